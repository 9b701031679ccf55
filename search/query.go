package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Tag matching modes of Query.TagMatch.
const (
	TagsAny = "any"
	TagsAll = "all"
)

// Search limits.
const (
	DefaultLimit = 10
	MaxLimit     = 1000
	// RRFK is the k of reciprocal rank fusion: score = Σ 1/(RRFK + rank).
	RRFK = 60
	// FusionWindow is how many of each ranking a hybrid search fuses, at
	// least; a deeper page widens it to Offset+Limit.
	FusionWindow = 100
)

// Query selects and ranks documents.
//
// With Text only, documents are ranked by BM25 over the text; with Vector
// only, by cosine similarity to it (documents without a vector of the same
// dimension are not candidates); with both, by reciprocal rank fusion of the
// two rankings; with neither, every document that passes the filters is
// listed newest first. Ties are broken by id, so a ranking is reproducible.
type Query struct {
	Owners   []string // required: the documents of any of these owners
	Kind     string   // KindPassage, KindMessage, or "" for both
	Text     string
	Vector   []float32
	Tags     []string // documents with any (TagMatch "any", the default) or all of these tags
	TagMatch string
	Roles    []string  // documents with any of these roles
	After    time.Time // documents at or after this time, when set (any time: see clampTimes)
	Before   time.Time // documents strictly before this time, when set
	Offset   int
	Limit    int // zero means DefaultLimit; at most MaxLimit
}

// Result is one page of hits.
type Result struct {
	Hits []Hit
	// Total is the number of documents the query matches: the text's
	// matches, the vector's candidates, or their union.
	Total int
}

// Hit is one matching document. Score is BM25, cosine similarity or the
// fused RRF score, by the kind of query; 0 for a listing.
type Hit struct {
	ID    string
	Owner string
	Score float64
	Time  time.Time
	Seq   uint64   // the document's Doc.Seq
	Part  int32    // the document's Doc.Part
	Text  string   // the document's Doc.Text
	Tags  []string // the document's Doc.Tags
	Role  string   // the document's Doc.Role
}

func (q *Query) check() error {
	if len(q.Owners) == 0 {
		return errors.New("query without owners")
	}
	for _, o := range q.Owners {
		if o == "" || strings.ContainsFunc(o, unicode.IsSpace) {
			return fmt.Errorf("owner %q is not an id", o)
		}
	}
	if q.Kind != "" && q.Kind != KindPassage && q.Kind != KindMessage {
		return fmt.Errorf("kind %q is not %q or %q", q.Kind, KindPassage, KindMessage)
	}
	if q.TagMatch != "" && q.TagMatch != TagsAny && q.TagMatch != TagsAll {
		return fmt.Errorf("tag match %q is not %q or %q", q.TagMatch, TagsAny, TagsAll)
	}
	if q.Offset < 0 {
		return fmt.Errorf("negative offset %d", q.Offset)
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("limit %d is outside 0..%d", q.Limit, MaxLimit)
	}
	if !q.After.IsZero() && !q.Before.IsZero() && !q.After.Before(q.Before) {
		return fmt.Errorf("empty time range: %v is not before %v", q.After, q.Before)
	}
	return nil
}

// The times the index can hold: Bleve stores a date as int64 nanoseconds
// since 1970 and refuses a range bound outside these.
var (
	minTime = query.MinRFC3339CompatibleTime // 1677-12-01
	maxTime = query.MaxRFC3339CompatibleTime // 2262-04-11
)

// clampTimes brings After and Before into the range the index can hold
// without changing what they match: a lower bound before it or an upper bound
// past it excludes nothing, so it is dropped; a lower bound past it or an
// upper bound before it excludes everything, and so does the range's edge.
func (q *Query) clampTimes() {
	switch {
	case q.After.IsZero():
	case q.After.Before(minTime):
		q.After = time.Time{}
	case q.After.After(maxTime):
		q.After = maxTime
	}
	switch {
	case q.Before.IsZero():
	case q.Before.After(maxTime):
		q.Before = time.Time{}
	case q.Before.Before(minTime):
		q.Before = minTime
	}
}

// filters builds the Bleve query of everything but the text.
func (q *Query) filters() []query.Query {
	qs := []query.Query{filterQuery(q.Owners, q.Kind)}
	if len(q.Tags) > 0 {
		qs = append(qs, termsQuery(fieldTags, q.Tags, q.TagMatch == TagsAll))
	}
	if len(q.Roles) > 0 {
		qs = append(qs, termsQuery(fieldRole, q.Roles, false))
	}
	if d := q.dateQuery(); d != nil {
		qs = append(qs, d)
	}
	return qs
}

// dateQuery is the date range filter, or nil.
func (q *Query) dateQuery() query.Query {
	if q.After.IsZero() && q.Before.IsZero() {
		return nil
	}
	incl, excl := true, false
	dq := bleve.NewDateRangeInclusiveQuery(q.After.UTC(), q.Before.UTC(), &incl, &excl)
	dq.SetField(fieldTime)
	dq.SetBoost(0)
	return dq
}

func (q *Query) vecFilter() *vecFilter {
	f := &vecFilter{kind: q.Kind, roles: q.Roles, tags: q.Tags, allTags: q.TagMatch == TagsAll, after: math.MinInt64}
	if !q.After.IsZero() {
		f.after = q.After.UnixNano()
	}
	if !q.Before.IsZero() {
		f.before = q.Before.UnixNano()
	}
	return f
}

// Search runs q. A query vector that is empty or zero counts as none.
func (ix *Index) Search(ctx context.Context, q Query) (Result, error) {
	if err := q.check(); err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	q.clampTimes()
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	text := strings.TrimSpace(q.Text) != ""
	vec := normalize(q.Vector)
	if text {
		ctx = ix.bm25Stats(ctx)
	}
	var (
		res Result
		err error
	)
	switch {
	case text && vec != nil:
		res, err = ix.hybrid(ctx, q, vec)
	case text:
		res, err = ix.bm25(ctx, q)
	case vec != nil:
		res, err = ix.vector(q, vec)
	default:
		res, err = ix.list(ctx, q)
	}
	if err == nil {
		err = ix.fillSeqs(ctx, res.Hits)
	}
	if errors.Is(err, bleve.ErrorIndexClosed) {
		err = ErrClosed
	}
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	return res, nil
}

// bm25Stats puts the index's BM25 statistics in ctx for Bleve's scorers.
// Left to itself, Bleve takes the average field length to be the number of
// distinct terms in the field's dictionaries over the number of documents,
// which depends on how the index happens to be split into segments and on
// deleted documents not yet merged away; a rebuilt index would then rank
// differently. These are exact: the documents, and the tokens of their
// texts, as of the last Apply.
func (ix *Index) bm25Stats(ctx context.Context) context.Context {
	ix.mu.RLock()
	docs, tokens := ix.docs, ix.tokens
	ix.mu.RUnlock()
	card := map[string]int{fieldText: int(tokens)}
	for _, f := range []string{fieldKind, fieldOwner, fieldRole, fieldTags, fieldDim, fieldScope, fieldTime, "*", "_id"} {
		card[f] = int(docs) // filters: scored with boost 0, but Bleve asks
	}
	return context.WithValue(ctx, bsearch.BM25StatsKey, &bsearch.BM25Stats{DocCount: float64(docs), FieldCardinality: card})
}

// textQuery matches the text's tokens in the scopes of the query's owners
// and kind, and the other filters. Each token is asked once per scope, as
// Bleve's match query asks each token once.
func (ix *Index) textQuery(q Query) query.Query {
	kinds := []string{KindPassage, KindMessage}
	if q.Kind != "" {
		kinds = []string{q.Kind}
	}
	toks := ix.analyze(q.Text)
	var tqs []query.Query
	for _, o := range dedup(q.Owners) {
		for _, k := range kinds {
			sc := scope(o, k)
			for _, t := range toks {
				tq := bleve.NewTermQuery(sc + string(t.Term))
				tq.SetField(fieldText)
				tqs = append(tqs, tq)
			}
		}
	}
	if len(tqs) == 0 {
		return bleve.NewMatchNoneQuery()
	}
	match := bleve.NewDisjunctionQuery(tqs...)
	match.SetMin(1)
	var filters []query.Query
	if len(q.Tags) > 0 {
		filters = append(filters, termsQuery(fieldTags, q.Tags, q.TagMatch == TagsAll))
	}
	if len(q.Roles) > 0 {
		filters = append(filters, termsQuery(fieldRole, q.Roles, false))
	}
	if d := q.dateQuery(); d != nil {
		filters = append(filters, d)
	}
	if len(filters) == 0 {
		return match
	}
	return bleve.NewConjunctionQuery(append([]query.Query{match}, filters...)...)
}

// ranked returns the best n hits of a scored query, ties broken by id.
//
// Sorting by id in Bleve loads the id of every match (milliseconds at 100k
// documents), so Bleve ranks by score alone, in a window somewhat wider than
// n, and ties are ordered here. A tie that straddles the window's end could
// change which tied documents make the cut: the window is widened until the
// tie ends inside it, and if the tie is too large for that, Bleve is asked to
// sort every match by id after all.
//
// The first try asks for first hits (at least n+1), with fields; wider
// tries ask for no fields, and the caller reads what it needs of the hits
// that lack them. A top 10 asks for 11 first, since its window's end rarely
// falls inside a tie; a fusion window of 100 often does (a two-word query's
// single-occurrence matches of like lengths score alike), and then a second
// search over every match costs more than a wider first window's ids.
func (ix *Index) ranked(ctx context.Context, q query.Query, n, first int, fields []string) (*bleve.SearchResult, error) {
	const widest = 4000
	first = max(first, n+1)
	for size := first; ; size = max(4*size, 4*n+16) {
		req := bleve.NewSearchRequestOptions(q, size, 0, false)
		if size == first {
			req.Fields = fields
		}
		res, err := ix.bleve().SearchInContext(ctx, req)
		if err != nil {
			return nil, err
		}
		h := res.Hits
		if len(h) < size || h[size-1].Score != h[n-1].Score {
			slices.SortStableFunc(h, func(a, b *bsearch.DocumentMatch) int {
				if a.Score != b.Score {
					if a.Score > b.Score {
						return -1
					}
					return 1
				}
				return strings.Compare(a.ID, b.ID)
			})
			res.Hits = h[:min(n, len(h))]
			return res, nil
		}
		if size > widest {
			break
		}
	}
	req := bleve.NewSearchRequestOptions(q, n, 0, false)
	req.SortBy([]string{"-_score", "_id"})
	return ix.bleve().SearchInContext(ctx, req)
}

// bm25 ranks the text's matches.
func (ix *Index) bm25(ctx context.Context, q Query) (Result, error) {
	res, err := ix.ranked(ctx, ix.textQuery(q), q.Offset+q.Limit, 0, hitFields)
	if err != nil {
		return Result{}, err
	}
	out := Result{Total: int(res.Total), Hits: make([]Hit, 0, q.Limit)}
	var missing []string
	for i := q.Offset; i < len(res.Hits); i++ {
		if res.Hits[i].Fields == nil {
			missing = append(missing, res.Hits[i].ID)
		}
	}
	stored, err := ix.stored(ctx, missing)
	if err != nil {
		return Result{}, err
	}
	for i := q.Offset; i < len(res.Hits); i++ {
		d := res.Hits[i]
		h, ok := stored[d.ID]
		if !ok {
			h = hitOf(d.ID, 0, d.Fields)
		}
		h.ID, h.Score = d.ID, d.Score
		out.Hits = append(out.Hits, h)
	}
	return out, nil
}

// stored reads the stored fields of documents.
func (ix *Index) stored(ctx context.Context, ids []string) (map[string]Hit, error) {
	out := make(map[string]Hit, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(ids), len(ids), 0, false)
	req.Fields = hitFields
	req.Score = "none"
	r, err := ix.bleve().SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, h := range r.Hits {
		out[h.ID] = hitOf(h.ID, 0, h.Fields)
	}
	return out, nil
}

func hitOf(id string, score float64, fields map[string]any) Hit {
	h := Hit{ID: id, Score: score}
	h.Owner, _ = fields[fieldOwner].(string)
	if at, ok := fields[fieldAt].(string); ok {
		h.Time, _ = time.Parse(time.RFC3339Nano, at)
	}
	if seq, ok := fields[fieldSeq].(string); ok {
		h.Seq, h.Part = parseSeq(seq)
	}
	h.Text, _ = fields[fieldBody].(string)
	h.Role, _ = fields[fieldRole].(string)
	switch t := fields[fieldTags].(type) {
	case string:
		h.Tags = []string{t}
	case []any:
		for _, v := range t {
			if s, ok := v.(string); ok {
				h.Tags = append(h.Tags, s)
			}
		}
	}
	return h
}

// fillSeqs reads the stored fields of hits that were ranked without them
// (vector and fused rankings), keeping their scores.
func (ix *Index) fillSeqs(ctx context.Context, hits []Hit) error {
	var ids []string
	for _, h := range hits {
		if h.Seq == 0 {
			ids = append(ids, h.ID)
		}
	}
	stored, err := ix.stored(ctx, ids)
	if err != nil {
		return err
	}
	for i, h := range hits {
		if st, ok := stored[h.ID]; ok && h.Seq == 0 {
			st.Score = h.Score
			hits[i] = st
		}
	}
	return nil
}

// hitFields are the stored fields a hit is made of.
var hitFields = []string{fieldOwner, fieldAt, fieldSeq, fieldBody, fieldTags, fieldRole}

// formatSeq and parseSeq write and read a document's place in the log:
// "<seq>", or "<seq>.<part>" for an event inside a packed message.
func formatSeq(seq uint64, part int32) string {
	if part == 0 {
		return strconv.FormatUint(seq, 10)
	}
	return strconv.FormatUint(seq, 10) + "." + strconv.Itoa(int(part))
}

func parseSeq(s string) (uint64, int32) {
	seqText, partText, _ := strings.Cut(s, ".")
	seq, _ := strconv.ParseUint(seqText, 10, 64)
	part, _ := strconv.Atoi(partText)
	return seq, int32(part)
}

// list returns the filtered documents, newest first.
func (ix *Index) list(ctx context.Context, q Query) (Result, error) {
	req := bleve.NewSearchRequestOptions(bleve.NewConjunctionQuery(q.filters()...), q.Limit, q.Offset, false)
	req.SortBy([]string{"-" + fieldTime, "-_id"})
	req.Score = "none"
	req.Fields = hitFields
	res, err := ix.bleve().SearchInContext(ctx, req)
	if err != nil {
		return Result{}, err
	}
	out := Result{Total: int(res.Total), Hits: make([]Hit, 0, len(res.Hits))}
	for _, h := range res.Hits {
		out.Hits = append(out.Hits, hitOf(h.ID, 0, h.Fields))
	}
	return out, nil
}

// vectorTop ranks the candidates' vectors against vec, keeping the best k.
func (ix *Index) vectorTop(q Query, vec []float32, k int) ([]scored, int, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, 0, ErrClosed
	}
	var blocks []*vecBlock
	for _, o := range dedup(q.Owners) {
		if b := ix.vecs.blocks[vecKey{o, len(vec)}]; b != nil {
			blocks = append(blocks, b)
		}
	}
	top, total := scan(blocks, vec, q.vecFilter(), k)
	return top, total, nil
}

// allHaveVectors reports whether q filters by owner and kind alone and
// every document of its owners and kind has a vector of dim: then the
// vector candidates are all the documents a text match can be.
func (ix *Index) allHaveVectors(q Query, dim int) (bool, error) {
	if len(q.Tags) > 0 || len(q.Roles) > 0 || !q.After.IsZero() || !q.Before.IsZero() {
		return false, nil
	}
	n := 0
	ix.mu.RLock()
	for _, o := range dedup(q.Owners) {
		if b := ix.vecs.blocks[vecKey{o, dim}]; b != nil {
			if q.Kind == "" {
				n += len(b.ids)
			} else {
				n += b.kinds[q.Kind]
			}
		}
	}
	ix.mu.RUnlock()
	docs, err := ix.Count(q.Owners, q.Kind)
	return err == nil && docs == n, err
}

func dedup(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func (ix *Index) vector(q Query, vec []float32) (Result, error) {
	top, total, err := ix.vectorTop(q, vec, q.Offset+q.Limit)
	if err != nil {
		return Result{}, err
	}
	out := Result{Total: total}
	for i := q.Offset; i < len(top); i++ {
		s := top[i]
		out.Hits = append(out.Hits, Hit{ID: s.id, Owner: s.owner, Score: float64(s.score), Time: fromNano(s.time)})
	}
	return out, nil
}

// hybrid fuses the BM25 and vector rankings by reciprocal rank fusion.
func (ix *Index) hybrid(ctx context.Context, q Query, vec []float32) (Result, error) {
	window := max(FusionWindow, q.Offset+q.Limit)
	// The legs run at once: the text ranking (and the count of text
	// matches without a vector, when it is needed) in Bleve, the vector
	// ranking here.
	var (
		res, cres  *bleve.SearchResult
		rerr, cerr error
		wg         sync.WaitGroup
	)
	wg.Go(func() { res, rerr = ix.ranked(ctx, ix.textQuery(q), window, 4*window+16, nil) })
	// Total: the vector candidates, plus the text matches that are not
	// candidates because they have no vector of this dimension. There are
	// none when the query filters by owner and kind alone and every such
	// document has a vector of this dimension, which the counts tell
	// without a query.
	full, err := ix.allHaveVectors(q, len(vec))
	if err == nil && !full {
		wg.Go(func() {
			noVec := bleve.NewBooleanQuery()
			noVec.AddMust(ix.textQuery(q))
			dq := bleve.NewTermQuery(fmt.Sprint(len(vec)))
			dq.SetField(fieldDim)
			noVec.AddMustNot(dq)
			creq := bleve.NewSearchRequestOptions(noVec, 0, 0, false)
			creq.Score = "none"
			cres, cerr = ix.bleve().SearchInContext(ctx, creq)
		})
	}
	var (
		top    []scored
		vtotal int
	)
	if err == nil {
		top, vtotal, err = ix.vectorTop(q, vec, window)
	}
	wg.Wait()
	if err = cmp.Or(err, rerr, cerr); err != nil {
		return Result{}, err
	}
	noVecTotal := 0
	if cres != nil {
		noVecTotal = int(cres.Total)
	}

	type fused struct {
		id    string
		score float64
		vec   *scored
	}
	byID := map[string]*fused{}
	var all []*fused
	get := func(id string) *fused {
		f := byID[id]
		if f == nil {
			f = &fused{id: id}
			byID[id] = f
			all = append(all, f)
		}
		return f
	}
	for i, h := range res.Hits {
		get(h.ID).score += 1 / float64(RRFK+i+1)
	}
	for i := range top {
		f := get(top[i].id)
		f.score += 1 / float64(RRFK+i+1)
		f.vec = &top[i]
	}
	slices.SortFunc(all, func(a, b *fused) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	out := Result{Total: vtotal + noVecTotal}
	if q.Offset >= len(all) {
		return out, nil
	}
	page := all[q.Offset:min(len(all), q.Offset+q.Limit)]

	// Owner and time: from the vector store, or from the index for text
	// matches without a vector.
	var missing []string
	for _, f := range page {
		if f.vec == nil {
			missing = append(missing, f.id)
		}
	}
	stored, err := ix.stored(ctx, missing)
	if err != nil {
		return Result{}, err
	}
	for _, f := range page {
		h := Hit{ID: f.id, Score: f.score}
		if f.vec != nil {
			h.Owner, h.Time = f.vec.owner, fromNano(f.vec.time)
		} else if s, ok := stored[f.id]; ok {
			h.Owner, h.Time = s.Owner, s.Time
		}
		out.Hits = append(out.Hits, h)
	}
	return out, nil
}
