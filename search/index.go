package search

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/whitespace"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Document kinds.
const (
	KindPassage = "passage"
	KindMessage = "message"
)

// Field names in the Bleve index. Changing them needs a rebuild.
const (
	fieldKind  = "kind"
	fieldOwner = "owner"
	fieldRole  = "role"
	fieldTags  = "tags"
	fieldTime  = "time"  // datetime, for ranges and sorting
	fieldAt    = "at"    // the time as RFC 3339 text, stored only, for hits
	fieldSeq   = "seq"   // the log sequence of the document's event, stored only, for hits
	fieldBody  = "body"  // the text as written, stored only, so a hit needs no log read
	fieldText  = "text"  // scoped terms: see scopedText
	fieldDim   = "vdim"  // the vector's dimension, "" when there is none
	fieldScope = "scope" // "<owner>/<kind>:", for counting
	fieldNTok  = "ntok"  // the text's token count, stored only, for BM25's statistics
)

// bleveDir is the Bleve index inside an index directory.
const bleveDir = "bleve"

// formatKey holds the index's format; indexFormat is the one this build
// writes. An index of another format is not read (ErrFormat): it is derived
// data, and its owner rebuilds it from the log.
var formatKey = []byte("engram.format")

const indexFormat = "2" // 2: stored bodies, tags and roles

// ErrFormat is returned by Open for an index written in another format.
var ErrFormat = errors.New("search: index of another format")

// checkpointKey is the Bleve internal key holding the log sequence and the
// generation of the last Apply, and the number of tokens of all documents'
// texts.
var checkpointKey = []byte("engram.checkpoint")

// Doc is one searchable document: an archival passage or a message.
type Doc struct {
	ID    string // passage or message id; unique across the index
	Kind  string // KindPassage or KindMessage
	Owner string // the agent id, or the source id for a source's passages
	Text  string // what BM25 ranks; not stored
	Role  string // messages: user, assistant, ...
	Tags  []string
	Time  time.Time
	Seq   uint64 // the log sequence of the event that wrote it, returned in hits
	Part  int32  // the event's index in a packed message at Seq (events.Envelope.Part)
	// Vector is the document's embedding, if it has one. It is normalised
	// on insert; an empty, zero or non-finite vector is ignored.
	Vector []float32
}

// Batch is one atomic change to the index. Its parts take effect in this
// order: DeleteOwner, then Delete, then Put; use [Batch.Merge] to combine
// consecutive batches without changing their meaning.
type Batch struct {
	Put         []Doc
	Delete      []string // document ids
	DeleteOwner []string // drop every document of these owners
	Seq         uint64   // the log sequence this batch brings the index to
}

// Empty reports whether b changes no document.
func (b Batch) Empty() bool {
	return len(b.Put) == 0 && len(b.Delete) == 0 && len(b.DeleteOwner) == 0
}

// Merge appends next, a later batch, to b so that applying b gives the same
// index as applying both in turn. b's Seq becomes next's.
func (b *Batch) Merge(next Batch) {
	if len(next.DeleteOwner) > 0 || len(next.Delete) > 0 {
		gone := map[string]bool{}
		for _, id := range next.Delete {
			gone[id] = true
		}
		b.Put = slices.DeleteFunc(b.Put, func(d Doc) bool {
			return gone[d.ID] || slices.Contains(next.DeleteOwner, d.Owner)
		})
		b.DeleteOwner = append(b.DeleteOwner, next.DeleteOwner...)
		b.Delete = append(b.Delete, next.Delete...)
	}
	if len(next.Put) > 0 {
		ids := map[string]bool{}
		for _, d := range next.Put {
			ids[d.ID] = true
		}
		b.Put = slices.DeleteFunc(b.Put, func(d Doc) bool { return ids[d.ID] })
		b.Put = append(b.Put, next.Put...)
	}
	b.Seq = next.Seq
}

// Options configures an Index. The zero value is usable.
type Options struct {
	// MaxBatch caps the documents in one Bleve batch; a larger Batch is
	// written as several, the last carrying the checkpoint. Zero means 1000.
	MaxBatch int
	// OpenTimeout bounds the wait for another holder of the index's lock
	// (another Index open on the same directory). Zero means one second.
	OpenTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = time.Second
	}
	return o
}

// Index is a search index on disk. Its methods are safe for concurrent use;
// Apply calls run one at a time.
type Index struct {
	dir string
	opt Options
	idx bleve.Index
	en  analysis.Analyzer // the text analyzer, before scoping

	applyMu sync.Mutex // serializes Apply, Close and SwapInto

	mu   sync.RWMutex // guards the fields below
	vecs *vecStore
	vlog *vecLog
	seq  uint64
	gen  uint64
	// tokens and docs are the index's BM25 statistics (see bm25Stats).
	tokens, docs uint64

	closed bool
}

// ErrClosed is returned by calls on a closed Index.
var ErrClosed = errors.New("search: index closed")

// The text field holds scoped terms: every token of a document's text,
// analysed with Bleve's "en" analyzer (unicode words, possessives,
// lowercase, English stop words, Porter stemming), prefixed with the
// document's owner and kind, "<owner>/<kind>:<token>". A query for some
// owners' passages asks for exactly their terms, so the owner and kind
// restrict the postings read instead of filtering them afterwards (a
// conjunction with a dense owner term cost 10-20x the bare match at 100k
// documents), and BM25's document frequencies are each owner's own.
const scopedAnalyzer = "engram_scoped"

func scope(owner, kind string) string { return owner + "/" + kind + ":" }

func indexMapping() (mapping.IndexMapping, error) {
	im := bleve.NewIndexMapping()
	im.ScoringModel = "bm25" // Bleve's default is tf-idf
	im.DefaultAnalyzer = en.AnalyzerName
	im.IndexDynamic, im.StoreDynamic, im.DocValuesDynamic = false, false, false
	if err := im.AddCustomAnalyzer(scopedAnalyzer, map[string]any{
		"type":      "custom",
		"tokenizer": whitespace.Name,
	}); err != nil {
		return nil, err
	}
	dm := bleve.NewDocumentStaticMapping()

	text := bleve.NewTextFieldMapping()
	text.Analyzer = scopedAnalyzer
	text.Store, text.IncludeTermVectors, text.DocValues, text.IncludeInAll = false, false, false, false
	dm.AddFieldMappingsAt(fieldText, text)

	for _, f := range []string{fieldKind, fieldOwner, fieldRole, fieldTags, fieldDim, fieldScope} {
		kw := bleve.NewKeywordFieldMapping()
		kw.Store = f == fieldOwner || f == fieldTags || f == fieldRole
		kw.IncludeTermVectors, kw.IncludeInAll, kw.DocValues, kw.SkipFreqNorm = false, false, false, true
		dm.AddFieldMappingsAt(f, kw)
	}

	dt := bleve.NewDateTimeFieldMapping()
	dt.Store, dt.IncludeInAll, dt.DocValues = false, false, true
	dm.AddFieldMappingsAt(fieldTime, dt)

	nt := bleve.NewNumericFieldMapping()
	nt.Index, nt.Store, nt.DocValues, nt.IncludeInAll = false, true, false, false
	dm.AddFieldMappingsAt(fieldNTok, nt)

	at := bleve.NewTextFieldMapping()
	at.Index, at.Store, at.IncludeTermVectors, at.DocValues, at.IncludeInAll = false, true, false, false, false
	dm.AddFieldMappingsAt(fieldAt, at)
	dm.AddFieldMappingsAt(fieldSeq, at)
	dm.AddFieldMappingsAt(fieldBody, at)

	im.DefaultMapping = dm
	return im, nil
}

// analyze analyses text as the index does, before scoping.
func (ix *Index) analyze(text string) analysis.TokenStream {
	return ix.en.Analyze([]byte(text))
}

// scopedText is the text field's value for a document, and its number of
// tokens.
func (ix *Index) scopedText(d Doc) (string, int) {
	toks := ix.analyze(d.Text)
	sc := scope(d.Owner, d.Kind)
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sc)
		b.Write(t.Term)
	}
	return b.String(), len(toks)
}

// Open opens the index in dir, creating it if dir holds none. A directory
// left half-swapped by a crash during SwapInto is restored first.
func Open(dir string, opt Options) (*Index, error) {
	opt = opt.withDefaults()
	if err := recoverSwap(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	cfg := map[string]any{"bolt_timeout": opt.OpenTimeout.String()}
	path := filepath.Join(dir, bleveDir)
	idx, err := bleve.OpenUsing(path, cfg)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		var im mapping.IndexMapping
		if im, err = indexMapping(); err == nil {
			idx, err = bleve.NewUsing(path, im, scorch.Name, scorch.Name, cfg)
		}
		if err == nil {
			err = idx.SetInternal(formatKey, []byte(indexFormat))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	if f, ferr := idx.GetInternal(formatKey); ferr != nil || string(f) != indexFormat {
		idx.Close()
		return nil, fmt.Errorf("open index %s: %w (it has %q, this build writes %q)", dir, ErrFormat, f, indexFormat)
	}
	analyzer := idx.Mapping().AnalyzerNamed(en.AnalyzerName)
	if analyzer == nil {
		idx.Close()
		return nil, fmt.Errorf("open index %s: no %q analyzer", dir, en.AnalyzerName)
	}
	seq, gen, tokens, err := readCheckpoint(idx)
	if err != nil {
		idx.Close()
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	vecs, vlog, err := loadVectors(dir, gen)
	if err != nil {
		idx.Close()
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	docs, err := idx.DocCount()
	if err != nil {
		idx.Close()
		vlog.close()
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	return &Index{dir: dir, opt: opt, idx: idx, en: analyzer, vecs: vecs, vlog: vlog, seq: seq, gen: gen, tokens: tokens, docs: docs}, nil
}

func readCheckpoint(idx bleve.Index) (seq, gen, tokens uint64, err error) {
	b, err := idx.GetInternal(checkpointKey)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read checkpoint: %w", err)
	}
	switch len(b) {
	case 0:
		return 0, 0, 0, nil
	case 24:
		return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:]), nil
	}
	return 0, 0, 0, fmt.Errorf("read checkpoint: %d bytes, want 24", len(b))
}

// bleve returns the current Bleve index (SwapInto replaces it).
func (ix *Index) bleve() bleve.Index {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.idx
}

// Dir returns the directory the index lives in.
func (ix *Index) Dir() string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.dir
}

// Seq returns the log sequence of the last applied batch: everything up to
// it, and nothing after it, is in the index, vectors included.
func (ix *Index) Seq() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.seq
}

func validDoc(d Doc) error {
	switch {
	case d.ID == "":
		return errors.New("document without an id")
	case d.Kind != KindPassage && d.Kind != KindMessage:
		return fmt.Errorf("document %s: kind %q is not %q or %q", d.ID, d.Kind, KindPassage, KindMessage)
	case d.Owner == "":
		return fmt.Errorf("document %s has no owner", d.ID)
	case strings.ContainsFunc(d.Owner, unicode.IsSpace):
		return fmt.Errorf("document %s: owner %q contains white space", d.ID, d.Owner)
	}
	return nil
}

// Apply writes b and moves the checkpoint to b.Seq. A batch whose Seq is
// below the current checkpoint is refused (the log only moves forward); an
// empty batch just moves the checkpoint. On error nothing of b is visible
// in Seq, and Apply may be retried; documents of a failed multi-part batch
// may already be searchable, and the retry writes them again.
func (ix *Index) Apply(b Batch) error {
	for _, d := range b.Put {
		if err := validDoc(d); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	ix.mu.RLock()
	closed, seq, gen := ix.closed, ix.seq, ix.gen
	ix.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if b.Seq < seq {
		return fmt.Errorf("apply: batch seq %d is behind the index's checkpoint %d", b.Seq, seq)
	}
	gen++

	// Resolve owner deletes to document ids, as of the index before b.
	var ownerIDs []string
	for _, owner := range b.DeleteOwner {
		ids, err := ix.ownerDocIDs(owner)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		ownerIDs = append(ownerIDs, ids...)
	}

	// The vector changes, in order, with their log records.
	var ops []vecOp
	ix.mu.RLock()
	hasVec := func(id string) bool { return ix.vecs.has(id) }
	for _, owner := range b.DeleteOwner {
		ops = append(ops, vecOp{op: opDeleteOwner, owner: owner})
	}
	for _, id := range b.Delete {
		if hasVec(id) {
			ops = append(ops, vecOp{op: opDelete, id: id})
		}
	}
	for _, d := range b.Put {
		if v := normalize(d.Vector); v != nil {
			ops = append(ops, vecOp{op: opPut, owner: d.Owner, id: d.ID, vec: v,
				meta: vecMeta{kind: d.Kind, role: d.Role, tags: slices.Clone(d.Tags), time: unixNano(d.Time)}})
		} else if hasVec(d.ID) {
			ops = append(ops, vecOp{op: opDelete, id: d.ID})
		}
	}
	ix.mu.RUnlock()
	var rec []byte
	for _, o := range ops {
		rec = appendRecord(rec, gen, o)
	}
	before := ix.vlog.size
	if err := ix.vlog.write(rec); err != nil {
		return fmt.Errorf("apply: %w", err)
	}

	// The token total after this batch: minus the documents it removes or
	// replaces, plus the ones it puts.
	tokens, err := ix.tokensAfter(b, ownerIDs)
	if err != nil {
		ix.vlog.rollback(before)
		return fmt.Errorf("apply: %w", err)
	}

	// The Bleve side, in parts of at most MaxBatch documents; the last part
	// carries the checkpoint.
	if err := ix.writeBleve(b, ownerIDs, gen, tokens); err != nil {
		if rerr := ix.vlog.rollback(before); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back vectors: %w", rerr))
		}
		return fmt.Errorf("apply: %w", err)
	}

	docs, err := ix.idx.DocCount()
	if err != nil {
		return fmt.Errorf("apply: %w", err) // committed; only the statistics are stale
	}
	ix.mu.Lock()
	for _, o := range ops {
		ix.vecs.apply(o)
	}
	ix.seq, ix.gen, ix.tokens, ix.docs = b.Seq, gen, tokens, docs
	ix.mu.Unlock()

	if len(b.Delete) > 0 || len(b.DeleteOwner) > 0 || len(ops) > 0 {
		ix.mu.RLock()
		err := ix.vlog.compact(ix.vecs, gen)
		ix.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	return nil
}

// tokensAfter returns the index's token total after b.
func (ix *Index) tokensAfter(b Batch, ownerIDs []string) (uint64, error) {
	ix.mu.RLock()
	total := int64(ix.tokens)
	ix.mu.RUnlock()
	seen := map[string]bool{}
	var ids []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, id := range ownerIDs {
		add(id)
	}
	for _, id := range b.Delete {
		add(id)
	}
	last := map[string]int{} // id → tokens of its last put
	for _, d := range b.Put {
		add(d.ID)
		last[d.ID] = len(ix.analyze(d.Text))
	}
	for lo := 0; lo < len(ids); lo += 1000 {
		part := ids[lo:min(lo+1000, len(ids))]
		req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(part), len(part), 0, false)
		req.Fields = []string{fieldNTok}
		req.Score = "none"
		res, err := ix.idx.Search(req)
		if err != nil {
			return 0, fmt.Errorf("read token counts: %w", err)
		}
		for _, h := range res.Hits {
			n, _ := h.Fields[fieldNTok].(float64)
			total -= int64(n)
		}
	}
	for _, n := range last {
		total += int64(n)
	}
	return uint64(max(total, 0)), nil
}

func (ix *Index) writeBleve(b Batch, ownerIDs []string, gen, tokens uint64) error {
	batch := ix.idx.NewBatch()
	flush := func() error {
		if batch.Size() == 0 {
			return nil
		}
		if err := ix.idx.Batch(batch); err != nil {
			return err
		}
		batch.Reset()
		return nil
	}
	for _, ids := range [][]string{ownerIDs, b.Delete} {
		for _, id := range ids {
			batch.Delete(id)
			if batch.Size() >= ix.opt.MaxBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	for _, d := range b.Put {
		if err := batch.Index(d.ID, ix.bleveDoc(d)); err != nil {
			return fmt.Errorf("index %s: %w", d.ID, err)
		}
		if batch.Size() >= ix.opt.MaxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	var cp [24]byte
	binary.BigEndian.PutUint64(cp[:], b.Seq)
	binary.BigEndian.PutUint64(cp[8:], gen)
	binary.BigEndian.PutUint64(cp[16:], tokens)
	batch.SetInternal(checkpointKey, cp[:])
	return ix.idx.Batch(batch)
}

func (ix *Index) bleveDoc(d Doc) map[string]any {
	text, ntok := ix.scopedText(d)
	m := map[string]any{
		fieldKind:  d.Kind,
		fieldOwner: d.Owner,
		fieldText:  text,
		fieldNTok:  float64(ntok),
		fieldScope: scope(d.Owner, d.Kind),
		fieldTime:  d.Time.UTC(),
		fieldAt:    d.Time.UTC().Format(time.RFC3339Nano),
	}
	if d.Seq != 0 {
		m[fieldSeq] = formatSeq(d.Seq, d.Part)
	}
	m[fieldBody] = d.Text
	if d.Role != "" {
		m[fieldRole] = d.Role
	}
	if len(d.Tags) > 0 {
		m[fieldTags] = d.Tags
	}
	if v := normalize(d.Vector); v != nil {
		m[fieldDim] = strconv.Itoa(len(v))
	}
	return m
}

// ownerDocIDs lists the ids of every document of owner.
func (ix *Index) ownerDocIDs(owner string) ([]string, error) {
	tq := bleve.NewTermQuery(owner)
	tq.SetField(fieldOwner)
	const page = 10000
	var ids []string
	var after []string
	for {
		req := bleve.NewSearchRequestOptions(tq, page, 0, false)
		req.SortBy([]string{"_id"})
		req.Score = "none"
		if after != nil {
			req.SearchAfter = after
		}
		res, err := ix.idx.Search(req)
		if err != nil {
			return nil, fmt.Errorf("list documents of %s: %w", owner, err)
		}
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
		}
		if len(res.Hits) < page {
			return ids, nil
		}
		after = []string{res.Hits[len(res.Hits)-1].ID}
	}
}

// Count returns how many documents of kind ("" for both) the owners have.
// It reads the index's term statistics, so it costs microseconds whatever
// the count.
func (ix *Index) Count(owners []string, kind string) (int, error) {
	if len(owners) == 0 {
		return 0, errors.New("count: no owners")
	}
	if kind != "" && kind != KindPassage && kind != KindMessage {
		return 0, fmt.Errorf("count: kind %q is not %q or %q", kind, KindPassage, KindMessage)
	}
	kinds := []string{KindPassage, KindMessage}
	if kind != "" {
		kinds = []string{kind}
	}
	ix.mu.RLock() // Close waits for the reader to be closed
	defer ix.mu.RUnlock()
	if ix.closed {
		return 0, ErrClosed
	}
	adv, err := ix.idx.Advanced()
	if err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		if errors.Is(err, bleve.ErrorIndexClosed) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("count: %w", err)
	}
	defer r.Close()
	n := 0
	for _, o := range dedup(owners) {
		for _, k := range kinds {
			tfr, err := r.TermFieldReader(context.Background(), []byte(scope(o, k)), fieldScope, false, false, false)
			if err != nil {
				return 0, fmt.Errorf("count: %w", err)
			}
			n += int(tfr.Count())
			tfr.Close()
		}
	}
	return n, nil
}

// termsQuery matches documents whose field holds any of values (all of
// them when all is set), without adding to the score.
func termsQuery(field string, values []string, all bool) query.Query {
	qs := make([]query.Query, 0, len(values))
	for _, v := range values {
		tq := bleve.NewTermQuery(v)
		tq.SetField(field)
		tq.SetBoost(0)
		qs = append(qs, tq)
	}
	if len(qs) == 1 {
		return qs[0]
	}
	if all {
		c := bleve.NewConjunctionQuery(qs...)
		c.SetBoost(0)
		return c
	}
	d := bleve.NewDisjunctionQuery(qs...)
	d.SetBoost(0)
	return d
}

func filterQuery(owners []string, kind string) query.Query {
	qs := []query.Query{termsQuery(fieldOwner, owners, false)}
	if kind != "" {
		qs = append(qs, termsQuery(fieldKind, []string{kind}, false))
	}
	if len(qs) == 1 {
		return qs[0]
	}
	return bleve.NewConjunctionQuery(qs...)
}

// Close closes the index. Searches in flight finish first; later calls
// return ErrClosed. Closing twice is harmless.
func (ix *Index) Close() error {
	ix.applyMu.Lock()
	defer ix.applyMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	err := ix.idx.Close() // waits for searches in flight
	if verr := ix.vlog.close(); err == nil {
		err = verr
	}
	return err
}
