package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/search"
	"github.com/engram-dev/engram/service"
)

// The search corpus: passages of 40 to 120 words (80 on average) drawn from
// a Zipf(1.1) vocabulary of 50,000 pseudo-words, each with a random 384-dim
// embedding; queries are two words of rank 2..500, the common case that
// matches thousands of passages.
const (
	searchDims  = 384
	searchVocab = 50_000
)

type corpus struct {
	r    *rand.Rand
	zipf *rand.Zipf
}

func newCorpus(seed uint64) *corpus {
	r := rand.New(rand.NewPCG(seed, 11))
	return &corpus{r: r, zipf: rand.NewZipf(r, 1.1, 1, searchVocab-1)}
}

func word(i uint64) string { return fmt.Sprintf("w%x", i) }

func (c *corpus) text() string {
	n := 40 + c.r.IntN(81)
	words := make([]string, n)
	for i := range words {
		words[i] = word(c.zipf.Uint64())
	}
	return strings.Join(words, " ")
}

func (c *corpus) vector() []float32 {
	v := make([]float32, searchDims)
	for i := range v {
		v[i] = float32(c.r.NormFloat64())
	}
	return v
}

func (c *corpus) query() string { return word(2+c.r.Uint64N(499)) + " " + word(2+c.r.Uint64N(499)) }

// searchFixture is the search workload's data: one agent whose archival
// memory holds n passages of the corpus, written through the log and
// followed by the node's index. BenchmarkSearch times the same searches
// over the same fixture.
type searchFixture struct {
	nd      *node.Node
	agentID string
	took    time.Duration // from the first append until the index held the last
}

// startSearchFixture fills a fresh quiet node in dir with n passages. The
// caller must close the fixture.
func startSearchFixture(ctx context.Context, dir string, n int) (*searchFixture, error) {
	nd, err := startQuietNode(ctx, dir)
	if err != nil {
		return nil, err
	}
	f := &searchFixture{nd: nd}
	if err := f.fill(ctx, n); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (f *searchFixture) close() { f.nd.Close(context.Background()) }

func (f *searchFixture) fill(ctx context.Context, n int) error {
	name := "searcher"
	a, err := f.nd.Service.CreateAgent(ctx, api.CreateAgent{Name: &name})
	if err != nil {
		return err
	}
	f.agentID = a.ID
	agg := events.Aggregate{Kind: events.KindAgent, ID: a.ID}
	c := newCorpus(uint64(n))
	t0 := time.Now().UTC()
	start := time.Now()
	var last events.Seq
	const per = 25 // passages per append: one packed message, as the file loader writes them
	// The appends run at most fixtureAhead messages ahead of the index.
	// Unchecked they ran far ahead, and the decoded backlog waiting for the
	// index stayed on the heap: 1.1 GB with 1,257 messages behind, 3.8 GB
	// with 4,509 (200k passages appended), and an RSS of 12.7 GB at 670k
	// passages of a 1M fixture; the index, not the appends, sets the pace.
	for lo := 0; lo < n; lo += per {
		b := events.Batch{Command: fmt.Sprintf("bench-passages-%d", lo)}
		for i := lo; i < min(lo+per, n); i++ {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			b.Events = append(b.Events, events.Envelope{Aggregate: agg, Time: t0, Event: &events.PassageInserted{
				ID: events.PassageID(events.DerivedID(events.PrefixPassage, fmt.Sprint(a.ID, i))), AgentID: events.AgentID(a.ID),
				Text: c.text(), Embedding: c.vector(), CreatedAt: &at,
			}})
		}
		if last, err = f.nd.Log.Append(ctx, b); err != nil {
			return err
		}
		if err := f.waitIndexWithin(ctx, last, fixtureAhead); err != nil {
			return err
		}
	}
	// The index's wait hurries what lingers in its queue, as a search's does.
	if err := f.nd.Projection.WaitFor(ctx, last); err != nil {
		return err
	}
	if err := f.nd.Service.WaitIndexed(ctx); err != nil {
		return err
	}
	f.took = time.Since(start)
	return nil
}

// fixtureAhead is how many messages (of 25 passages) the search fixture's
// appends may run ahead of the index.
const fixtureAhead = 200

// waitIndexWithin waits until the node's index is at most ahead messages
// behind last.
func (f *searchFixture) waitIndexWithin(ctx context.Context, last events.Seq, ahead events.Seq) error {
	for last > ahead && f.nd.IndexedSeq() < last-ahead {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// searchMode is one of the top-10 searches the workload times, each as a
// row and as a sub-benchmark of BenchmarkSearch.
type searchMode struct {
	name string // the sub-benchmark's
	what string // the row's
	// index runs one search on the index; service, for the mode that is
	// the service's whole search, runs it through the service instead
	// (which takes the index itself).
	index   func(ctx context.Context, ix *search.Index, agentID, q string, v []float32) error
	service func(ctx context.Context, svc *service.Service, agentID, q string) error
}

// searchModes lists the modes in the order they run: the baseline, Bleve's
// own match query on the same index, first.
var searchModes = []searchMode{
	{name: "raw-bleve", what: "raw Bleve match query, same index", index: func(ctx context.Context, ix *search.Index, agentID, q string, _ []float32) error {
		_, err := ix.RawMatch(ctx, agentID, search.KindPassage, q)
		return err
	}},
	{name: "bm25", what: "BM25", index: func(ctx context.Context, ix *search.Index, agentID, q string, _ []float32) error {
		_, err := ix.Search(ctx, search.Query{Owners: []string{agentID}, Kind: search.KindPassage, Text: q})
		return err
	}},
	{name: "vector", what: "vector (384 dims, exact)", index: func(ctx context.Context, ix *search.Index, agentID, _ string, v []float32) error {
		_, err := ix.Search(ctx, search.Query{Owners: []string{agentID}, Kind: search.KindPassage, Vector: v})
		return err
	}},
	{name: "hybrid", what: "hybrid (BM25 + vector, RRF)", index: func(ctx context.Context, ix *search.Index, agentID, q string, v []float32) error {
		_, err := ix.Search(ctx, search.Query{Owners: []string{agentID}, Kind: search.KindPassage, Text: q, Vector: v})
		return err
	}},
	{name: "service", what: "the service's whole archival search (BM25; text, tags and time of the hits from the index)", service: func(ctx context.Context, svc *service.Service, agentID, q string) error {
		_, err := svc.SearchArchival(ctx, agentID, api.ArchivalQuery{Query: q, Limit: 10})
		return err
	}},
}

// time runs n searches of the mode, each with the next query (two words and
// a vector) of a corpus seeded alike for every mode, and returns each one's
// latency.
func (f *searchFixture) time(ctx context.Context, m searchMode, n int) (lat latencies, err error) {
	qc := newCorpus(99)
	each := func(run func(q string, v []float32) error) {
		lat = make(latencies, 0, n)
		for range n {
			q, v := qc.query(), qc.vector()
			s := time.Now()
			if err = run(q, v); err != nil {
				return
			}
			lat = append(lat, time.Since(s))
		}
	}
	if m.service != nil {
		each(func(q string, _ []float32) error { return m.service(ctx, f.nd.Service, f.agentID, q) })
		return lat, err
	}
	f.nd.WithIndex(func(ix *search.Index) {
		each(func(q string, v []float32) error { return m.index(ctx, ix, f.agentID, q, v) })
	})
	return lat, err
}

// runSearch writes passages into one agent's archival memory through the
// log, lets the node's index follow it, and times top-10 searches: BM25,
// vector and hybrid on the index, each beside Bleve's own match query on
// the same index; and the whole archival search of the service (waiting
// for the index to hold the caller's writes, BM25, the hits' text from the
// index).
func runSearch(ctx context.Context, env *Env) ([]Row, error) {
	sizes, queries := []int{10_000, 100_000}, 200
	if env.Quick {
		sizes, queries = []int{1_000, 5_000}, 20
	}
	if len(env.SearchSizes) > 0 {
		sizes = env.SearchSizes
	}
	var rows []Row
	for _, n := range sizes {
		profile := ""
		if n == slices.Max(sizes) {
			profile = env.SearchProfile
		}
		r, err := searchSize(ctx, env, n, queries, profile)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// sizeName writes a number of passages as the rows name it: 10k, 1M.
func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// searchSize builds a fixture of n passages and times each mode's queries
// over it, writing a CPU profile of the timed searches to profile when it
// is set.
func searchSize(ctx context.Context, env *Env, n, queries int, profile string) ([]Row, error) {
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	f, err := startSearchFixture(ctx, dir, n)
	if err != nil {
		return nil, err
	}
	defer f.close()
	size := sizeName(n)
	rows := []Row{{
		What:     fmt.Sprintf("index %s passages (80 words, 384-dim vectors) from the log: appended, followed, indexed", size),
		Engram:   rate(float64(n)/f.took.Seconds(), "passages/s"),
		Baseline: "—", Ratio: "—", Target: "—",
		Note: fmt.Sprintf("%s from the first append until the index held the last; the appends kept at most %s passages ahead of the index",
			f.took.Round(time.Millisecond), thousands(fixtureAhead*25)),
		Metrics: map[string]float64{"passages_per_s": float64(n) / f.took.Seconds()},
	}}

	if profile != "" {
		pf, err := os.Create(profile)
		if err != nil {
			return rows, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return rows, fmt.Errorf("search profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	lats := map[string]latencies{}
	for _, m := range searchModes {
		if lats[m.name], err = f.time(ctx, m, queries); err != nil {
			return rows, err
		}
	}
	raw := lats["raw-bleve"]
	rawCell := fmt.Sprintf("%s: %s (%s)", searchModes[0].what, dur(raw.pct(.5)), dur(raw.pct(.99)))
	type budget struct {
		text  string
		limit time.Duration
	}
	budgets := map[string]budget{} // DESIGN.md's p50 budgets, judged at 100k
	if n == 100_000 {
		budgets = map[string]budget{"bm25": {"p50 < 2 ms", 2 * time.Millisecond}, "vector": {"p50 < 25 ms", 25 * time.Millisecond}}
	}
	for _, m := range searchModes[1:] {
		l := lats[m.name]
		r := float64(l.pct(.5)) / float64(raw.pct(.5))
		t := "—"
		if b, ok := budgets[m.name]; ok {
			t = verdict(b.text, l.pct(.5) < b.limit)
		}
		rows = append(rows, Row{
			What:     fmt.Sprintf("archival search, %s passages, %s top-10: p50 (p99)", size, m.what),
			Engram:   fmt.Sprintf("%s (%s)", dur(l.pct(.5)), dur(l.pct(.99))),
			Baseline: rawCell, Ratio: fmt.Sprintf("%.2f×", r), Target: t,
			Note:    fmt.Sprintf("%d queries of two words", queries),
			Metrics: map[string]float64{"engram_p50_us": us(l.pct(.5)), "engram_p99_us": us(l.pct(.99)), "raw_p50_us": us(raw.pct(.5)), "raw_p99_us": us(raw.pct(.99)), "ratio": r},
		})
	}
	return rows, nil
}
