package search

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkHybridTextLeg times a hybrid search's text ranking (a fusion
// window of 100, ties at its end broken by id) with a first window of 101
// hits, widened fourfold while a tie straddles its end, against a first
// window of 416, alternating query by query over one index of -short 10k,
// else 100k, passages drawn as the search workload draws them (a Zipf(1.1)
// vocabulary of 50,000 words, 40–120 words each; queries of two words of
// rank 2..500). It reports each variant's p50 and Bleve searches per query.
func BenchmarkHybridTextLeg(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	ix, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	r := rand.New(rand.NewPCG(3, 11))
	zipf := rand.NewZipf(r, 1.1, 1, 50_000-1)
	word := func(i uint64) string { return fmt.Sprintf("w%x", i) }
	t0 := time.Now()
	for i := 0; i < n; i += 1000 {
		var batch Batch
		for j := i; j < i+1000 && j < n; j++ {
			words := make([]string, 40+r.IntN(81))
			for k := range words {
				words[k] = word(zipf.Uint64())
			}
			batch.Put = append(batch.Put, Doc{ID: fmt.Sprintf("passage-%08d", j), Kind: KindPassage, Owner: "agent-bench",
				Text: strings.Join(words, " "), Time: t0.Add(time.Duration(j) * time.Second), Seq: uint64(j + 1)})
		}
		batch.Seq = uint64(i + 1000)
		if err := ix.Apply(batch); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	queries := make([]Query, 64)
	for i := range queries {
		queries[i] = Query{Text: word(2+r.Uint64N(499)) + " " + word(2+r.Uint64N(499)), Owners: []string{"agent-bench"}, Kind: KindPassage, Limit: 10}
	}
	const window = FusionWindow
	variants := []int{window + 1, 4*window + 16}
	lat := make([][]time.Duration, len(variants))
	b.ResetTimer()
	for i := range b.N {
		q := queries[i%len(queries)]
		sctx := ix.bm25Stats(ctx)
		for v, first := range variants {
			start := time.Now()
			res, err := ix.ranked(sctx, ix.textQuery(q), window, first, nil)
			if err != nil {
				b.Fatal(err)
			}
			lat[v] = append(lat[v], time.Since(start))
			if v > 0 && len(res.Hits) > 0 {
				// Both variants rank alike.
				prev, err := ix.ranked(sctx, ix.textQuery(q), window, variants[0], nil)
				if err != nil {
					b.Fatal(err)
				}
				for k := range res.Hits {
					if res.Hits[k].ID != prev.Hits[k].ID {
						b.Fatalf("query %q: hit %d is %s with a first window of %d, %s with %d", q.Text, k, res.Hits[k].ID, first, prev.Hits[k].ID, variants[0])
					}
				}
			}
		}
	}
	b.StopTimer()
	for v, first := range variants {
		slices.Sort(lat[v])
		b.ReportMetric(float64(lat[v][len(lat[v])/2])/float64(time.Millisecond), fmt.Sprintf("p50-ms-first%d", first))
	}
}
