package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
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
	var rows []Row
	for _, n := range sizes {
		r, err := searchSize(ctx, env, n, queries)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func searchSize(ctx context.Context, env *Env, n, queries int) ([]Row, error) {
	nd, err := env.quietNode(ctx)
	if err != nil {
		return nil, err
	}
	defer nd.Close(context.Background())
	name := "searcher"
	a, err := nd.Service.CreateAgent(ctx, api.CreateAgent{Name: &name})
	if err != nil {
		return nil, err
	}
	agg := events.Aggregate{Kind: events.KindAgent, ID: a.ID}
	c := newCorpus(uint64(n))
	t0 := time.Now().UTC()
	start := time.Now()
	var last events.Seq
	const per = 25 // passages per append: one packed message, as the file loader writes them
	for lo := 0; lo < n; lo += per {
		b := events.Batch{Command: fmt.Sprintf("bench-passages-%d", lo)}
		for i := lo; i < min(lo+per, n); i++ {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			b.Events = append(b.Events, events.Envelope{Aggregate: agg, Time: t0, Event: &events.PassageInserted{
				ID: events.PassageID(events.DerivedID(events.PrefixPassage, fmt.Sprint(a.ID, i))), AgentID: events.AgentID(a.ID),
				Text: c.text(), Embedding: c.vector(), CreatedAt: &at,
			}})
		}
		if last, err = nd.Log.Append(ctx, b); err != nil {
			return nil, err
		}
	}
	for nd.IndexedSeq() < last {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if err := nd.Projection.WaitFor(ctx, last); err != nil {
		return nil, err
	}
	size := fmt.Sprintf("%dk", n/1000)
	rows := []Row{{
		What:     fmt.Sprintf("index %s passages (80 words, 384-dim vectors) from the log: appended, followed, indexed", size),
		Engram:   rate(float64(n)/took.Seconds(), "passages/s"),
		Baseline: "—", Ratio: "—", Target: "—",
		Note:    fmt.Sprintf("%s from the first append until the index held the last", took.Round(time.Millisecond)),
		Metrics: map[string]float64{"passages_per_s": float64(n) / took.Seconds()},
	}}

	owners := []string{a.ID}
	time1 := func(f func(q string, v []float32) error) (latencies, error) {
		qc := newCorpus(99)
		var lat latencies
		for range queries {
			q, v := qc.query(), qc.vector()
			s := time.Now()
			if err := f(q, v); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(s))
		}
		return lat, nil
	}
	var (
		raw, bm25, vec, hyb latencies
		ierr                error
	)
	nd.WithIndex(func(ix *search.Index) {
		// Each mode and its baseline run over the same queries, raw first
		// and last so that a noisy neighbour hits both alike.
		if raw, ierr = time1(func(q string, _ []float32) error {
			_, err := ix.RawMatch(ctx, a.ID, search.KindPassage, q)
			return err
		}); ierr != nil {
			return
		}
		if bm25, ierr = time1(func(q string, _ []float32) error {
			_, err := ix.Search(ctx, search.Query{Owners: owners, Kind: search.KindPassage, Text: q})
			return err
		}); ierr != nil {
			return
		}
		if vec, ierr = time1(func(_ string, v []float32) error {
			_, err := ix.Search(ctx, search.Query{Owners: owners, Kind: search.KindPassage, Vector: v})
			return err
		}); ierr != nil {
			return
		}
		hyb, ierr = time1(func(q string, v []float32) error {
			_, err := ix.Search(ctx, search.Query{Owners: owners, Kind: search.KindPassage, Text: q, Vector: v})
			return err
		})
	})
	if ierr != nil {
		return rows, ierr
	}
	svc, err := time1(func(q string, _ []float32) error {
		_, err := nd.Service.SearchArchival(ctx, a.ID, service.ArchivalQuery{Query: q, Limit: 10})
		return err
	})
	if err != nil {
		return rows, err
	}
	rawCell := fmt.Sprintf("raw Bleve match query, same index: %s (%s)", dur(raw.pct(.5)), dur(raw.pct(.99)))
	row := func(what string, l latencies, target string, limit time.Duration) Row {
		r := float64(l.pct(.5)) / float64(raw.pct(.5))
		t := "—"
		if target != "" {
			t = verdict(target, l.pct(.5) < limit)
		}
		return Row{
			What:     fmt.Sprintf("archival search, %s passages, %s top-10: p50 (p99)", size, what),
			Engram:   fmt.Sprintf("%s (%s)", dur(l.pct(.5)), dur(l.pct(.99))),
			Baseline: rawCell, Ratio: fmt.Sprintf("%.2f×", r), Target: t,
			Note:    fmt.Sprintf("%d queries of two words", queries),
			Metrics: map[string]float64{"engram_p50_us": us(l.pct(.5)), "engram_p99_us": us(l.pct(.99)), "raw_p50_us": us(raw.pct(.5)), "raw_p99_us": us(raw.pct(.99)), "ratio": r},
		}
	}
	bmTarget, vecTarget := "", ""
	if n >= 100_000 {
		bmTarget, vecTarget = "p50 < 2 ms", "p50 < 25 ms"
	}
	rows = append(rows,
		row("BM25", bm25, bmTarget, 2*time.Millisecond),
		row("vector (384 dims, exact)", vec, vecTarget, 25*time.Millisecond),
		row("hybrid (BM25 + vector, RRF)", hyb, "", 0),
		row("the service's whole archival search (BM25; text, tags and time of the hits from the index)", svc, "", 0),
	)
	return rows, nil
}
