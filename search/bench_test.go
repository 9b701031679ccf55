package search

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Benchmarks use synthetic passages: 40 to 120 words (80 on average) drawn
// from a Zipf(1.1) vocabulary of 50,000 pseudo-words, and random 384-dim
// embeddings.
// Queries are two words of rank 2..500, the common case that matches
// thousands of passages.

const (
	benchDims  = 384
	benchVocab = 50000
	benchWords = 80
)

type benchCorpus struct {
	r    *rand.Rand
	zipf *rand.Zipf
}

func newBenchCorpus(seed uint64) *benchCorpus {
	r := rand.New(rand.NewPCG(seed, 7))
	return &benchCorpus{r: r, zipf: rand.NewZipf(r, 1.1, 1, benchVocab-1)}
}

func benchWord(i uint64) string { return fmt.Sprintf("w%x", i) }

func (c *benchCorpus) doc(i int, owner string, t time.Time) Doc {
	var sb strings.Builder
	for j := range benchWords/2 + c.r.IntN(benchWords+1) {
		if j > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(benchWord(c.zipf.Uint64()))
	}
	return Doc{ID: fmt.Sprintf("passage-%08d", i), Kind: KindPassage, Owner: owner, Text: sb.String(),
		Time: t.Add(time.Duration(i) * time.Second), Vector: c.vector()}
}

func (c *benchCorpus) vector() []float32 {
	v := make([]float32, benchDims)
	for i := range v {
		v[i] = float32(c.r.NormFloat64())
	}
	return v
}

func (c *benchCorpus) query() string {
	return benchWord(2+c.r.Uint64N(499)) + " " + benchWord(2+c.r.Uint64N(499))
}

var (
	benchMu   sync.Mutex // guards benchIdx and benchDirs
	benchIdx  = map[int]*Index{}
	benchDirs []string
)

// benchIndex returns an index of n passages of one owner, built once per
// test binary run and shared by the sub-benchmarks.
func benchIndex(b *testing.B, n int) *Index {
	benchMu.Lock()
	defer benchMu.Unlock()
	if ix := benchIdx[n]; ix != nil {
		return ix
	}
	dir, err := os.MkdirTemp("", "engram-search-bench-")
	if err != nil {
		b.Fatal(err)
	}
	benchDirs = append(benchDirs, dir)
	ix, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	c := newBenchCorpus(uint64(n))
	start := time.Now()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for lo := 0; lo < n; lo += 1000 {
		var batch Batch
		for i := lo; i < min(lo+1000, n); i++ {
			batch.Put = append(batch.Put, c.doc(i, "agent-bench", t0))
		}
		batch.Seq = uint64(lo + len(batch.Put))
		if err := ix.Apply(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built %d passages in %v (%.0f docs/s)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	benchIdx[n] = ix
	return ix
}

func TestMain(m *testing.M) {
	code := m.Run()
	benchMu.Lock()
	for _, ix := range benchIdx {
		ix.Close()
	}
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	benchMu.Unlock()
	os.Exit(code)
}

// BenchmarkIndex measures Apply: batches of 1000 passages with 384-dim
// vectors, into one owner.
func BenchmarkIndex(b *testing.B) {
	ix, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	c := newBenchCorpus(1)
	t0 := time.Now()
	batches := make([]Batch, b.N)
	for i := range batches {
		for j := range 1000 {
			batches[i].Put = append(batches[i].Put, c.doc(i*1000+j, "agent-bench", t0))
		}
		batches[i].Seq = uint64(i + 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := ix.Apply(batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "docs/s")
}

// BenchmarkSearch measures top-10 searches of one owner's passages, with
// the raw Bleve match query (no engram filters) on the same index as the
// baseline. Latency percentiles are over the b.N queries.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("n=%dk", n/1000), func(b *testing.B) {
			if n > 10000 && testing.Short() {
				b.Skip("the 100k index takes minutes to build; not with -short")
			}
			ix := benchIndex(b, n)
			owners := []string{"agent-bench"}
			modes := []struct {
				name string
				run  func(c *benchCorpus) error
			}{
				{"bm25", func(c *benchCorpus) error {
					_, err := ix.Search(context.Background(), Query{Owners: owners, Text: c.query()})
					return err
				}},
				{"vector", func(c *benchCorpus) error {
					_, err := ix.Search(context.Background(), Query{Owners: owners, Vector: c.vector()})
					return err
				}},
				{"hybrid", func(c *benchCorpus) error {
					_, err := ix.Search(context.Background(), Query{Owners: owners, Text: c.query(), Vector: c.vector()})
					return err
				}},
				// The baseline: Bleve's match query of the same terms
				// (scoped, as the index stores them), no filters, default
				// sort, no stored fields.
				{"raw-bleve", func(c *benchCorpus) error {
					_, err := ix.RawMatch(context.Background(), "agent-bench", KindPassage, c.query())
					return err
				}},
			}
			for _, m := range modes {
				b.Run(m.name, func(b *testing.B) {
					c := newBenchCorpus(99)
					lat := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						start := time.Now()
						if err := m.run(c); err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(start))
					}
					b.StopTimer()
					slices.Sort(lat)
					pct := func(p float64) float64 {
						i := int(math.Ceil(p*float64(len(lat)))) - 1
						return float64(lat[max(i, 0)].Microseconds()) / 1000
					}
					b.ReportMetric(pct(0.50), "p50-ms")
					b.ReportMetric(pct(0.99), "p99-ms")
				})
			}
		})
	}
}

// BenchmarkVectorScan measures the exact top-10 scan alone (no Bleve), 100k
// vectors of 384 dims in one owner: the floor under the vector search.
func BenchmarkVectorScan(b *testing.B) {
	c := newBenchCorpus(5)
	st := newVecStore()
	for i := range 100000 {
		st.put("o", fmt.Sprintf("v%06d", i), normalize(c.vector()), vecMeta{kind: KindPassage})
	}
	blocks := []*vecBlock{st.blocks[vecKey{"o", benchDims}]}
	f := &vecFilter{after: math.MinInt64}
	qs := make([][]float32, 64)
	for i := range qs {
		qs[i] = normalize(c.vector())
	}
	b.ResetTimer()
	for i := range b.N {
		scan(blocks, qs[i%len(qs)], f, 10)
	}
}
