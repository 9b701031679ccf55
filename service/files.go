package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// FileStore keeps the bytes of files loaded into sources.
type FileStore interface {
	// PutFile stores data under name and returns its digest.
	PutFile(ctx context.Context, name string, data []byte) (string, error)
	// GetFile returns the bytes stored under name, checked against digest.
	GetFile(ctx context.Context, name, digest string) ([]byte, error)
}

// Ingester turns files into passage texts.
type Ingester interface {
	// Check refuses, before anything is stored, a file that is too large (a
	// fault.TooLarge error) or of a type it cannot read (fault.Unsupported).
	// It returns the file's MIME type.
	Check(name, mime string, data []byte) (string, error)
	// Text extracts a file's text. A file that cannot be parsed is an error
	// that says why; an empty file gives "" and no error.
	Text(name, mime string, data []byte) (string, error)
	// Passages extracts a file's text and splits it into passages of at
	// most chunkTokens tokens.
	Passages(name, mime string, data []byte, chunkTokens int) ([]string, error)
}

// Embedder computes embeddings for texts, one vector per text, in order.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Upload is one file a client loads into a source. It is defined in api so
// that the Go client can name it without linking the service.
type Upload = api.Upload

// Duplicate handling when a source already holds a file of the same name.
const (
	DupSuffix  = "suffix" // store it as name_(N).ext (the default)
	DupSkip    = "skip"   // keep the existing file and return it
	DupError   = "error"  // refuse the upload
	DupReplace = "replace"
)

// Job types and file statuses (a file starts "parsing", see
// projections.File).
const (
	JobLoadFiles   = "load_files"
	FileEmbedding  = "embedding"
	FileCompleted  = "completed"
	FileFailed     = "error"
	defaultChunk   = 300 // tokens per passage when the source's embedding config names none
	passagesPerAdd = 25  // passages per append while loading a file (one packed message: a search reads a whole message to show one passage)
)

// LoadResult is what LoadFiles started.
type LoadResult struct {
	Job     api.Job
	Files   []api.FileMetadata // stored and being processed, in the order given
	Skipped []api.FileMetadata // existing files kept (DupSkip)
	Refused []Refusal          // refused up front (too large, unsupported type); not stored
}

// Refusal names a file and what was wrong with it (api.Refusal, which the
// Go client reads from a job without linking the service).
type Refusal = api.Refusal

// jobProgress is a load job's metadata.
type jobProgress struct {
	SourceID      string    `json:"source_id"`
	Documents     int       `json:"num_documents"`
	DocumentsDone int       `json:"num_documents_done"`
	Passages      int       `json:"num_passages"`
	Refused       []Refusal `json:"refused_documents,omitempty"` // refused up front, never stored
	Failed        []Refusal `json:"failed_documents,omitempty"`  // stored, but could not be loaded
	FileIDs       []string  `json:"file_ids"`
	FileName      string    `json:"filename,omitempty"` // Letta's metadata for a one-file job
}

// UploadFile loads one file into a source: the Letta upload route. A file
// refused up front is an error (413 or 415) and changes nothing.
func (s *Service) UploadFile(ctx context.Context, sourceID string, up Upload, dup string) (api.FileMetadata, api.Job, error) {
	if s.cfg.Ingest != nil {
		if _, err := s.cfg.Ingest.Check(path.Base(up.Name), up.MIME, up.Data); err != nil {
			return api.FileMetadata{}, api.Job{}, err
		}
	}
	res, err := s.LoadFiles(ctx, sourceID, []Upload{up}, dup)
	switch {
	case err != nil:
		return api.FileMetadata{}, api.Job{}, err
	case len(res.Skipped) > 0:
		return res.Skipped[0], res.Job, nil
	case len(res.Files) == 0:
		return api.FileMetadata{}, api.Job{}, invalid("file %s was refused", up.Name)
	}
	return res.Files[0], res.Job, nil
}

// LoadFiles stores files in a source and starts one job that splits them
// into passages (and embeds them, when the source's embedding model is
// served). It returns once the files are stored and the job created; the
// job runs in the background and survives a restart. Files refused up
// front are reported in the result and in the job, and not stored.
func (s *Service) LoadFiles(ctx context.Context, sourceID string, ups []Upload, dup string) (LoadResult, error) {
	if s.cfg.Ingest == nil || s.cfg.Files == nil {
		return LoadResult{}, fault.E(fault.Unavailable, "this server cannot load files (no file store configured)")
	}
	switch dup {
	case "":
		dup = DupSuffix
	case DupSuffix, DupSkip, DupError, DupReplace:
	default:
		return LoadResult{}, unprocessable("duplicate_handling must be one of suffix, skip, error, replace, not %q", dup)
	}
	if len(ups) == 0 {
		return LoadResult{}, invalid("no files to load")
	}
	var src *projections.Source
	var err error
	s.read(func(st *projections.State) { src, err = lookupSource(st, sourceID) })
	if err != nil {
		return LoadResult{}, err
	}
	srcName := src.Name

	var res LoadResult
	type stored struct {
		ev events.FileCreated
	}
	var keep []stored
	taken := map[string]bool{}
	c := s.command(ctx, "load_files", sourceID)
	for _, up := range ups {
		base := path.Base(strings.ReplaceAll(up.Name, "\\", "/"))
		if base == "" || base == "." || base == "/" {
			return LoadResult{}, invalid("a file needs a name")
		}
		if err := checkName("file", base); err != nil {
			return LoadResult{}, err
		}
		typ, err := s.cfg.Ingest.Check(base, up.MIME, up.Data)
		if err != nil {
			if k := fault.KindOf(err); k != fault.TooLarge && k != fault.Unsupported {
				return LoadResult{}, err
			}
			res.Refused = append(res.Refused, Refusal{Name: base, Error: err.Error()})
			continue
		}
		name := srcName + "/" + base
		var existing *projections.File
		s.read(func(st *projections.State) {
			if src := st.Sources[events.SourceID(sourceID)]; src != nil {
				for _, f := range src.Files {
					if f.OriginalName == base {
						existing = f
						break
					}
				}
			}
		})
		if existing != nil || taken[name] {
			switch dup {
			case DupError:
				return LoadResult{}, invalid("File %s already exists in source %s", base, srcName)
			case DupSkip:
				if existing != nil {
					res.Skipped = append(res.Skipped, fileView(sourceID, existing))
				}
				continue
			case DupSuffix:
				name = s.freeName(sourceID, srcName, base, taken)
			}
		}
		taken[name] = true
		id := c.newID(events.PrefixFile)
		digest, err := s.cfg.Files.PutFile(ctx, id, up.Data)
		if err != nil {
			return LoadResult{}, fault.Wrap(fault.Unavailable, err, "cannot store file %s", base)
		}
		st := stored{ev: events.FileCreated{
			ID: events.FileID(id), Name: name, OriginalName: base, MIME: typ, Size: int64(len(up.Data)),
			Digest: digest, Object: id,
		}}
		if dup == DupReplace && existing != nil {
			// The old file and its passages go first; the new one loads as
			// any other.
			if err := s.DeleteFile(ctx, sourceID, string(existing.ID)); err != nil && fault.KindOf(err) != fault.NotFound {
				return LoadResult{}, err
			}
		}
		keep = append(keep, st)
	}

	if len(keep) == 0 && len(res.Refused) == 0 {
		return res, nil // every file was a duplicate kept as it was
	}
	jobID := c.newID(events.PrefixJob)
	prog := jobProgress{SourceID: sourceID, Documents: len(keep) + len(res.Refused), Refused: res.Refused}
	for _, k := range keep {
		prog.FileIDs = append(prog.FileIDs, string(k.ev.ID))
	}
	if len(ups) == 1 {
		prog.FileName = path.Base(ups[0].Name)
	}
	meta, _ := json.Marshal(prog)
	err = s.exec(ctx, c, jobAgg(jobID), func(st *projections.State, d *decision) error {
		src, err := lookupSource(st, sourceID)
		if err != nil {
			return err
		}
		d.expectAt(st, sourceAgg(sourceID))
		d.add(c, jobAgg(jobID), &events.JobCreated{
			ID: events.JobID(jobID), JobType: JobLoadFiles, SourceID: events.SourceID(sourceID), Metadata: meta,
			OrganizationID: src.Org,
		})
		for _, k := range keep {
			ev := k.ev
			ev.JobID = events.JobID(jobID)
			d.add(c, sourceAgg(sourceID), &ev)
		}
		return nil
	})
	if err != nil {
		return LoadResult{}, err
	}
	s.read(func(st *projections.State) {
		if j := st.Jobs[events.JobID(jobID)]; j != nil {
			res.Job = jobView(j)
		}
		if src := st.Sources[events.SourceID(sourceID)]; src != nil {
			for _, k := range keep {
				if f := src.File(k.ev.ID); f != nil {
					res.Files = append(res.Files, fileView(sourceID, f))
				}
			}
		}
	})
	s.startLoad(jobID)
	return res, nil
}

// freeName returns "<source>/<base>_(N)<ext>" for the smallest free N.
func (s *Service) freeName(sourceID, srcName, base string, taken map[string]bool) string {
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	used := map[string]bool{}
	s.read(func(st *projections.State) {
		if src := st.Sources[events.SourceID(sourceID)]; src != nil {
			for _, f := range src.Files {
				used[f.Name] = true
			}
		}
	})
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s/%s_(%d)%s", srcName, stem, n, ext)
		if !used[name] && !taken[name] {
			return name
		}
	}
}

// startLoad runs a load job in the background, once per job at a time.
func (s *Service) startLoad(jobID string) {
	if _, busy := s.loading.LoadOrStore(jobID, true); busy {
		return
	}
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		defer s.loading.Delete(jobID)
		ctx, cancel := s.background()
		defer cancel()
		loaded, err := s.runLoad(ctx, jobID)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("load job failed", "job", jobID, "err", err)
		}
		if loaded >= largeLoad && ctx.Err() == nil {
			s.returnMemory(ctx)
		}
	}()
}

// largeLoad is the bytes of files a load job reads past which the memory
// it used is handed back to the operating system when it ends.
const largeLoad = 8 << 20

// returnMemory waits (a while) for the search index to take in what a large
// load stored, then frees the memory the load used and returns it to the
// operating system at once. Left to the runtime, a 40 MB text file's load
// kept RSS near 210 MB, 100 MB above what the server then needed, for as
// long as it stayed idle; with this it settles near 120 MB
// (TestLargeLoadReturnsMemory, run with -large).
func (s *Service) returnMemory(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.WaitIndexed(wctx); err != nil && ctx.Err() != nil {
		return
	}
	debug.FreeOSMemory()
}

// ResumeLoads restarts the load jobs a previous process left unfinished.
// Passage ids derive from the file and the chunk, so work redone is
// stored once.
func (s *Service) ResumeLoads() int {
	var jobs []string
	s.read(func(st *projections.State) {
		for _, j := range st.Jobs {
			if j.JobType == JobLoadFiles && (j.Status == api.JobCreated || j.Status == api.JobRunning) {
				jobs = append(jobs, string(j.ID))
			}
		}
	})
	slices.Sort(jobs)
	for _, id := range jobs {
		s.startLoad(id)
	}
	return len(jobs)
}

// runLoad processes every file of a load job that is not finished. It
// returns the bytes of the files it read.
func (s *Service) runLoad(ctx context.Context, jobID string) (loaded int64, err error) {
	var (
		prog   jobProgress
		status string
	)
	s.read(func(st *projections.State) {
		if j := st.Jobs[events.JobID(jobID)]; j != nil {
			status = j.Status
			_ = json.Unmarshal(j.Metadata, &prog)
		}
	})
	if status == "" {
		return 0, fmt.Errorf("no job %s", jobID)
	}
	if status == api.JobCreated {
		if err := s.updateJob(ctx, jobID, api.JobRunning, "", prog); err != nil {
			return 0, err
		}
	}
	prog.DocumentsDone, prog.Passages, prog.Failed = len(prog.Refused), 0, nil
	for _, fid := range prog.FileIDs {
		if ctx.Err() != nil {
			return loaded, ctx.Err()
		}
		n, size, err := s.loadFile(ctx, prog.SourceID, events.FileID(fid))
		loaded += size
		if ctx.Err() != nil {
			return loaded, ctx.Err() // shutting down: the next start resumes
		}
		prog.DocumentsDone++
		prog.Passages += n
		if err != nil {
			name := fid
			s.read(func(st *projections.State) {
				if src := st.Sources[events.SourceID(prog.SourceID)]; src != nil {
					if f := src.File(events.FileID(fid)); f != nil {
						name = f.OriginalName
					}
				}
			})
			prog.Failed = append(prog.Failed, Refusal{Name: name, Error: err.Error()})
		}
		if err := s.updateJob(ctx, jobID, api.JobRunning, "", prog); err != nil {
			return loaded, err
		}
	}
	if bad := append(slices.Clone(prog.Refused), prog.Failed...); len(bad) > 0 {
		var msgs []string
		for _, f := range bad {
			msgs = append(msgs, f.Name+": "+f.Error)
		}
		msg := fmt.Sprintf("%d of %d documents failed: %s", len(bad), prog.Documents, strings.Join(msgs, "; "))
		return loaded, s.updateJob(ctx, jobID, api.JobFailed, msg, prog)
	}
	return loaded, s.updateJob(ctx, jobID, api.JobCompleted, "", prog)
}

func (s *Service) updateJob(ctx context.Context, jobID, status, msg string, prog jobProgress) error {
	meta, _ := json.Marshal(prog)
	c := s.command(ctx, "update_job", jobID)
	return s.exec(ctx, c, jobAgg(jobID), func(st *projections.State, d *decision) error {
		j := st.Jobs[events.JobID(jobID)]
		if j == nil {
			return notFound("Job with id %s not found", jobID)
		}
		if j.Status == api.JobCompleted || j.Status == api.JobFailed {
			return errNothing
		}
		d.expectAt(st, jobAgg(jobID))
		d.add(c, jobAgg(jobID), &events.JobUpdated{Status: status, Metadata: meta, Error: msg})
		return nil
	})
}

// errFileGone stops a load whose file or source was deleted meanwhile.
var errFileGone = errors.New("the file was deleted while it was loading")

// loadFile turns one stored file into passages. It returns the number of
// passages the file has and the bytes of the file it read (0 if it read
// none). A file that fails is marked with its error and keeps no passages.
func (s *Service) loadFile(ctx context.Context, sourceID string, fileID events.FileID) (n int, size int64, err error) {
	var (
		f      projections.File
		found  bool
		embCfg json.RawMessage
	)
	s.read(func(st *projections.State) {
		if src := st.Sources[events.SourceID(sourceID)]; src != nil {
			if p := src.File(fileID); p != nil {
				f, found = *p, true
				f.Passages = slices.Clone(p.Passages)
			}
			embCfg = src.EmbeddingConfig
		}
	})
	if !found {
		return 0, 0, errFileGone
	}
	switch f.Status {
	case FileCompleted:
		return len(f.Passages), 0, nil
	case FileFailed:
		return 0, 0, errors.New(f.Error)
	}
	fail := func(err error) (int, int64, error) {
		if uerr := s.fileFailed(ctx, sourceID, fileID, err); uerr != nil {
			return 0, size, uerr
		}
		return 0, size, err
	}
	data, err := s.cfg.Files.GetFile(ctx, f.Object, f.Digest)
	if err != nil {
		return fail(fmt.Errorf("cannot read the stored file: %w", err))
	}
	size = int64(len(data))
	cfg := embeddingConfig(embCfg)
	chunk := defaultChunk
	if cfg != nil && cfg.EmbeddingChunkSize != nil && *cfg.EmbeddingChunkSize > 0 {
		chunk = *cfg.EmbeddingChunkSize
	}
	texts, err := s.cfg.Ingest.Passages(f.OriginalName, f.MIME, data, chunk)
	if err != nil {
		return fail(err)
	}
	var vecs [][]float32
	if s.embedderFor(cfg) != nil && len(texts) > 0 {
		if err := s.setFileStatus(ctx, sourceID, fileID, FileEmbedding); err != nil {
			return 0, size, err
		}
		if vecs, err = s.embed(ctx, embCfg, texts); err != nil {
			return fail(fmt.Errorf("embedding failed: %w", err))
		}
	}
	// Append in slices; the last one also marks the file completed, so a
	// file is completed exactly when all its passages are stored.
	for start := 0; start < len(texts) || start == 0; start += passagesPerAdd {
		end := min(start+passagesPerAdd, len(texts))
		last := end == len(texts)
		c := &command{id: fmt.Sprintf("load:%s:%d", fileID, start), now: s.cfg.Clock().UTC()}
		err := s.exec(ctx, c, sourceAgg(sourceID), func(st *projections.State, d *decision) error {
			src := st.Sources[events.SourceID(sourceID)]
			if src == nil || src.File(fileID) == nil {
				return errFileGone
			}
			d.expectAt(st, sourceAgg(sourceID))
			for i := start; i < end; i++ {
				p := &events.PassageInserted{
					ID:       events.PassageID(events.DerivedID(events.PrefixPassage, fmt.Sprintf("%s#%d", fileID, i))),
					SourceID: events.SourceID(sourceID), FileID: fileID, Text: texts[i], EmbeddingConfig: embCfg,
				}
				if vecs != nil {
					p.Embedding = vecs[i]
				}
				d.add(c, sourceAgg(sourceID), p)
			}
			if last {
				d.add(c, sourceAgg(sourceID), &events.FileUpdated{ID: fileID, Status: FileCompleted, Passages: len(texts)})
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, errFileGone) || ctx.Err() != nil {
				return 0, size, err
			}
			// Take back what was stored, so the file is never half loaded.
			if cerr := s.dropFilePassages(ctx, sourceID, fileID); cerr != nil {
				return 0, size, cerr
			}
			return fail(fmt.Errorf("storing passages failed: %w", err))
		}
		if last {
			break
		}
	}
	return len(texts), size, nil
}

func (s *Service) embedderFor(cfg *api.EmbeddingConfig) Embedder {
	if cfg == nil || s.cfg.Embed == nil {
		return nil
	}
	return s.cfg.Embed(*cfg)
}

func (s *Service) setFileStatus(ctx context.Context, sourceID string, fileID events.FileID, status string) error {
	c := s.command(ctx, "file_status", string(fileID)+"/"+status)
	return s.exec(ctx, c, sourceAgg(sourceID), func(st *projections.State, d *decision) error {
		src := st.Sources[events.SourceID(sourceID)]
		if src == nil || src.File(fileID) == nil {
			return errFileGone
		}
		d.expectAt(st, sourceAgg(sourceID))
		d.add(c, sourceAgg(sourceID), &events.FileUpdated{ID: fileID, Status: status})
		return nil
	})
}

// fileFailed marks a file as failed with the reason.
func (s *Service) fileFailed(ctx context.Context, sourceID string, fileID events.FileID, why error) error {
	c := s.command(ctx, "file_failed", string(fileID))
	err := s.exec(ctx, c, sourceAgg(sourceID), func(st *projections.State, d *decision) error {
		src := st.Sources[events.SourceID(sourceID)]
		if src == nil || src.File(fileID) == nil {
			return errNothing
		}
		d.expectAt(st, sourceAgg(sourceID))
		d.add(c, sourceAgg(sourceID), &events.FileUpdated{ID: fileID, Status: FileFailed, Error: why.Error()})
		return nil
	})
	return err
}

// dropFilePassages deletes every passage of a file, in slices.
func (s *Service) dropFilePassages(ctx context.Context, sourceID string, fileID events.FileID) error {
	for {
		c := s.command(ctx, "drop_file_passages", string(fileID))
		err := s.exec(ctx, c, sourceAgg(sourceID), func(st *projections.State, d *decision) error {
			src := st.Sources[events.SourceID(sourceID)]
			if src == nil {
				return errNothing
			}
			f := src.File(fileID)
			if f == nil || len(f.Passages) == 0 {
				return errNothing
			}
			d.expectAt(st, sourceAgg(sourceID))
			for _, p := range f.Passages[:min(len(f.Passages), passagesPerAdd)] {
				d.add(c, sourceAgg(sourceID), &events.PassageDeleted{ID: p})
			}
			return nil
		})
		if err != nil {
			return err
		}
		left := 0
		s.read(func(st *projections.State) {
			if src := st.Sources[events.SourceID(sourceID)]; src != nil {
				if f := src.File(fileID); f != nil {
					left = len(f.Passages)
				}
			}
		})
		if left == 0 {
			return nil
		}
	}
}

// DeleteFile removes a file and its passages from a source.
func (s *Service) DeleteFile(ctx context.Context, sourceID, fileID string) error {
	if err := events.CheckID(events.PrefixFile, fileID); err != nil {
		return unprocessable("%v", err)
	}
	var err error
	s.read(func(st *projections.State) {
		var src *projections.Source
		if src, err = lookupSource(st, sourceID); err == nil && src.File(events.FileID(fileID)) == nil {
			err = notFound("File with id %s not found in source %s", fileID, sourceID)
		}
	})
	if err != nil {
		return err
	}
	if err := s.dropFilePassages(ctx, sourceID, events.FileID(fileID)); err != nil {
		return err
	}
	c := s.command(ctx, "delete_file", fileID)
	return s.exec(ctx, c, sourceAgg(sourceID), func(st *projections.State, d *decision) error {
		src, err := lookupSource(st, sourceID)
		if err != nil {
			return err
		}
		if src.File(events.FileID(fileID)) == nil {
			return notFound("File with id %s not found in source %s", fileID, sourceID)
		}
		d.expectAt(st, sourceAgg(sourceID))
		d.add(c, sourceAgg(sourceID), &events.FileDeleted{ID: events.FileID(fileID)})
		return nil
	})
}

// GetFile returns a file's metadata, with its text when withContent is set.
func (s *Service) GetFile(ctx context.Context, sourceID, fileID string, withContent bool) (api.FileMetadata, error) {
	if err := events.CheckID(events.PrefixFile, fileID); err != nil {
		return api.FileMetadata{}, unprocessable("%v", err)
	}
	var (
		out api.FileMetadata
		err error
		obj projections.File
	)
	s.read(func(st *projections.State) {
		var src *projections.Source
		if src, err = lookupSource(st, sourceID); err != nil {
			return
		}
		f := src.File(events.FileID(fileID))
		if f == nil {
			err = notFound("File with id %s not found in source %s", fileID, sourceID)
			return
		}
		out, obj = fileView(sourceID, f), *f
	})
	if err != nil || !withContent {
		return out, err
	}
	content, err := s.fileContent(ctx, obj)
	out.Content = &content
	return out, err
}

func (s *Service) fileContent(ctx context.Context, f projections.File) (string, error) {
	data, err := s.cfg.Files.GetFile(ctx, f.Object, f.Digest)
	if err != nil {
		return "", fault.Wrap(fault.Unavailable, err, "cannot read file %s", f.ID)
	}
	text, err := s.cfg.Ingest.Text(f.OriginalName, f.MIME, data)
	if err != nil {
		return "", invalid("file %s cannot be read: %v", f.OriginalName, err)
	}
	return text, nil
}

// ListFiles lists a source's files, newest first unless the page says
// otherwise.
func (s *Service) ListFiles(ctx context.Context, sourceID string, p api.Page, withContent bool) ([]api.FileMetadata, error) {
	var (
		out  []api.FileMetadata
		objs []projections.File
		err  error
	)
	s.read(func(st *projections.State) {
		var src *projections.Source
		if src, err = lookupSource(st, sourceID); err != nil {
			return
		}
		var list []*projections.File
		if list, err = page(src.Files, func(f *projections.File) string { return string(f.ID) }, p, "desc", 1000, "File"); err != nil {
			return
		}
		out = make([]api.FileMetadata, 0, len(list)) // an empty list is [], not null
		for _, f := range list {
			out = append(out, fileView(sourceID, f))
			objs = append(objs, *f)
		}
	})
	if err != nil || !withContent {
		return out, err
	}
	for i := range out {
		content, err := s.fileContent(ctx, objs[i])
		if err != nil {
			return nil, err
		}
		out[i].Content = &content
	}
	return out, nil
}

// ListSourcePassages lists a source's passages, oldest first unless the
// page says otherwise.
func (s *Service) ListSourcePassages(ctx context.Context, sourceID string, p api.Page) ([]api.Passage, error) {
	var (
		refs []projections.Ref
		err  error
	)
	s.read(func(st *projections.State) {
		var src *projections.Source
		if src, err = lookupSource(st, sourceID); err != nil {
			return
		}
		refs, err = page(src.Passages, func(r projections.Ref) string { return r.ID }, p, "asc", 1000, "Passage")
	})
	if err != nil {
		return nil, err
	}
	return s.passageBodies(ctx, refs)
}

// WaitJob waits until a job is completed or failed, and returns it.
func (s *Service) WaitJob(ctx context.Context, jobID string) (api.Job, error) {
	for {
		j, err := s.GetJob(ctx, jobID)
		if err != nil || j.Status == api.JobCompleted || j.Status == api.JobFailed {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, fault.Wrap(fault.Unavailable, ctx.Err(), "job %s is still %s", jobID, j.Status)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func fileView(sourceID string, f *projections.File) api.FileMetadata {
	v := api.FileMetadata{
		ID: string(f.ID), SourceID: sourceID, FileName: f.Name, OriginalFileName: f.OriginalName,
		FilePath: f.OriginalName, FileType: f.MIME, FileSize: f.Size, ProcessingStatus: f.Status,
		CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, Digest: f.Digest,
	}
	if f.Error != "" {
		v.ErrorMessage = &f.Error
	}
	if f.Status == FileCompleted {
		n := len(f.Passages)
		v.TotalChunks, v.ChunksEmbedded = &n, &n
	}
	return v
}

// ListAgentFiles lists the files of the sources attached to an agent.
func (s *Service) ListAgentFiles(ctx context.Context, agentID string, p api.Page) (api.FilesPage, error) {
	var (
		out api.FilesPage
		err error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err != nil {
			return
		}
		var all []api.AgentFile
		for _, sid := range a.SourceIDs {
			src := st.Sources[sid]
			if src == nil {
				continue
			}
			for _, f := range src.Files {
				all = append(all, api.AgentFile{
					ID: string(f.ID), FileID: string(f.ID), FileName: f.Name, FolderID: string(sid),
					FolderName: src.Name, Status: f.Status,
				})
			}
		}
		limit := p.Limit
		if limit == 0 {
			limit = 100
		}
		p.Limit = limit + 1
		var list []api.AgentFile
		if list, err = page(all, func(f api.AgentFile) string { return f.ID }, p, "asc", limit+1, "File"); err != nil {
			return
		}
		out.Files = list
		if len(list) > limit {
			out.Files, out.HasMore = list[:limit], true
			next := list[limit-1].ID
			out.NextCursor = &next
		}
		if out.Files == nil {
			out.Files = []api.AgentFile{}
		}
	})
	return out, err
}
