package client

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/ingest"
)

// MaxFileBytes is the largest file the clients read from disk to load into
// a source; the server may set a lower limit.
const MaxFileBytes = 50 << 20

// readUpload reads a file from disk for loading, refusing an oversized one
// before reading it.
func readUpload(name string) (api.Upload, error) {
	f, err := os.Open(name)
	if err != nil {
		return api.Upload{}, fault.Wrap(fault.Invalid, err, "cannot open %s", name)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return api.Upload{}, fault.Wrap(fault.Invalid, err, "cannot read %s", name)
	}
	if fi.IsDir() {
		return api.Upload{}, fault.E(fault.Invalid, "%s is a directory; use LoadData with a directory connector", name)
	}
	if fi.Size() > MaxFileBytes {
		return api.Upload{}, fault.E(fault.TooLarge, "%s is %d bytes; the limit is %d", name, fi.Size(), MaxFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return api.Upload{}, fault.Wrap(fault.Invalid, err, "cannot read %s", name)
	}
	return api.Upload{Name: filepath.Base(name), Data: data}, nil
}

// LoadFileToSource loads the file at filename (on this machine) into a
// source. With blocking it returns once the job is completed or failed.
func (c core) LoadFileToSource(ctx context.Context, filename, sourceID string, blocking bool) (*api.Job, error) {
	up, err := readUpload(filename)
	if err != nil {
		return nil, err
	}
	jobs, refused, err := c.b.LoadFiles(ctx, sourceID, []api.Upload{up})
	if err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		return nil, refusalError(refused[0])
	}
	if len(jobs) != 1 {
		return nil, fault.E(fault.Internal, "loading %s started %d jobs", filename, len(jobs))
	}
	if !blocking {
		return &jobs[0], nil
	}
	j, err := c.waitJob(ctx, jobs[0].ID)
	return &j, err
}

// refusalError is a file the server refused up front, as an error.
func refusalError(r api.Refusal) error {
	return fault.E(fault.Invalid, "%s", r.Error)
}

// waitJob polls a job until it is completed or failed.
func (c core) waitJob(ctx context.Context, id string) (api.Job, error) {
	delay := 10 * time.Millisecond
	for {
		j, err := c.b.GetJob(ctx, id)
		if err != nil || j.Status == api.JobCompleted || j.Status == api.JobFailed {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, fault.Wrap(fault.Unavailable, ctx.Err(), "job %s is still %s", id, j.Status)
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// ListFilesFromSource lists every file of a source, oldest first.
func (c core) ListFilesFromSource(ctx context.Context, sourceID string) ([]api.FileMetadata, error) {
	return collect(c.pageSize, func(f api.FileMetadata) string { return f.ID }, func(p api.Page) ([]api.FileMetadata, error) {
		return c.b.ListFiles(ctx, sourceID, p)
	})
}

// DeleteFileFromSource removes a file and its passages from a source.
func (c core) DeleteFileFromSource(ctx context.Context, sourceID, fileID string) error {
	return c.b.DeleteFile(ctx, sourceID, fileID)
}

// ListSourcePassages lists every passage of a source, oldest first.
func (c core) ListSourcePassages(ctx context.Context, sourceID string) ([]api.Passage, error) {
	return collect(c.pageSize, func(p api.Passage) string { return p.ID }, func(p api.Page) ([]api.Passage, error) {
		return c.b.SourcePassages(ctx, sourceID, p)
	})
}

// SearchArchivalMemory ranks the passages an agent's archival search sees
// (its own and its attached sources'): BM25 over their words, fused with
// vector similarity when the agent's embedding model is served.
func (c core) SearchArchivalMemory(ctx context.Context, agentID string, q api.ArchivalQuery) (*api.ArchivalSearch, error) {
	return one(c.b.SearchPassages(ctx, agentID, q))
}

// LoadProgress is how far LoadData has come.
type LoadProgress struct {
	Documents     int // documents the connector yielded so far
	DocumentsDone int // documents loaded or failed
	Passages      int // passages stored so far
}

// LoadReport is what LoadData did.
type LoadReport struct {
	Jobs      []api.Job     // the loading jobs, finished
	Documents int           // documents the connector yielded
	Passages  int           // passages stored
	Failed    []api.Refusal // documents that could not be loaded, and why
}

// loadBatchBytes bounds the bytes LoadData reads before starting a job.
const loadBatchBytes = 64 << 20

// LoadData loads every document a connector yields into the source named
// sourceName (the seed's load_data), and waits until they are loaded.
// Documents that cannot be read, are too large or are of an unsupported
// type are reported in the result, not loaded; the others are. progress,
// when not nil, is called as the work advances.
func (c core) LoadData(ctx context.Context, conn ingest.Connector, sourceName string, progress func(LoadProgress)) (*LoadReport, error) {
	sourceID, err := c.GetSourceID(ctx, sourceName)
	if err != nil {
		return nil, err
	}
	rep := &LoadReport{}
	report := func(extra int) {
		if progress != nil {
			done := len(rep.Failed) + extra
			passages := 0
			for _, j := range rep.Jobs {
				m := jobMeta(j)
				done += m.Done
				passages += m.Passages
			}
			progress(LoadProgress{Documents: rep.Documents, DocumentsDone: done, Passages: passages})
		}
	}
	var (
		batch []api.Upload
		bytes int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		jobs, refused, err := c.b.LoadFiles(ctx, sourceID, batch)
		batch, bytes = nil, 0
		if err != nil {
			return err
		}
		rep.Failed = append(rep.Failed, refused...)
		for _, j := range jobs {
			rep.Jobs = append(rep.Jobs, j)
			i := len(rep.Jobs) - 1
			for {
				j, err := c.b.GetJob(ctx, j.ID)
				if err != nil {
					return err
				}
				rep.Jobs[i] = j
				report(0)
				if j.Status == api.JobCompleted || j.Status == api.JobFailed {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
		return nil
	}
	for doc, err := range conn.Documents(ctx) {
		rep.Documents++
		if err == nil {
			err = ingest.CheckSize(doc.Size, MaxFileBytes)
		}
		var data []byte
		if err == nil {
			data, err = readDocument(doc)
		}
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Failed = append(rep.Failed, api.Refusal{Name: doc.Name, Error: err.Error()})
			report(0)
			continue
		}
		batch = append(batch, api.Upload{Name: path.Base(doc.Name), MIME: doc.MIME, Data: data})
		bytes += len(data)
		report(0)
		if bytes >= loadBatchBytes {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	if err := flush(); err != nil {
		return rep, err
	}
	for _, j := range rep.Jobs {
		m := jobMeta(j)
		rep.Passages += m.Passages
		rep.Failed = append(rep.Failed, m.Refused...)
		rep.Failed = append(rep.Failed, m.Failed...)
	}
	report(0)
	return rep, nil
}

func readDocument(doc ingest.Document) ([]byte, error) {
	r, err := doc.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if err := ingest.CheckSize(int64(len(data)), MaxFileBytes); err != nil {
		return nil, err
	}
	return data, nil
}

// loadMeta is the part of a load job's metadata LoadData reads.
type loadMeta struct {
	Done     int           `json:"num_documents_done"`
	Passages int           `json:"num_passages"`
	Refused  []api.Refusal `json:"refused_documents"`
	Failed   []api.Refusal `json:"failed_documents"`
}

func jobMeta(j api.Job) loadMeta {
	var m loadMeta
	_ = json.Unmarshal(j.Metadata, &m)
	return m
}
