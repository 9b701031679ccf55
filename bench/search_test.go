package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/search"
)

// The search workload's fixture and searches under go test:
//
//	go test ./bench -run '^$' -bench 'Search|Index' -benchtime 200x
//
// The 100k fixture takes minutes to build; -short leaves it out.

// BenchmarkSearch times each of the workload's top-10 searches (searchModes)
// over the workload's fixture, built once per size through the log as the
// workload builds it: raw-bleve is the baseline, Bleve's own match query on
// the same index. Latency percentiles are over the b.N queries.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("n=%dk", n/1000), func(b *testing.B) {
			if n > 10_000 && testing.Short() {
				b.Skip("the 100k fixture takes minutes to build; not with -short")
			}
			// A benchmark with sub-benchmarks runs once, so the fixture is
			// built once for all of them.
			f, err := startSearchFixture(b.Context(), b.TempDir(), n)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(f.close)
			b.Logf("indexed %d passages from the log in %v", n, f.took.Round(time.Millisecond))
			for _, m := range searchModes {
				b.Run(m.name, func(b *testing.B) {
					b.ReportAllocs()
					b.ResetTimer()
					lat, err := f.time(b.Context(), m, b.N)
					b.StopTimer()
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(lat.pct(.5))/float64(time.Millisecond), "p50-ms")
					b.ReportMetric(float64(lat.pct(.99))/float64(time.Millisecond), "p99-ms")
				})
			}
		})
	}
}

// BenchmarkIndex measures the index's Apply alone: batches of 1000 of the
// workload's passages, one owner. The workload's indexing row times the
// whole path from the log (append, follow, decode, apply), which hides
// Apply's share; this isolates it.
func BenchmarkIndex(b *testing.B) {
	ix, err := search.Open(b.TempDir(), search.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	c := newCorpus(1)
	t0 := time.Now()
	batches := make([]search.Batch, b.N)
	for i := range batches {
		for j := range 1000 {
			k := i*1000 + j
			batches[i].Put = append(batches[i].Put, search.Doc{
				ID: fmt.Sprintf("passage-%08d", k), Kind: search.KindPassage, Owner: "agent-bench",
				Text: c.text(), Time: t0.Add(time.Duration(k) * time.Second), Vector: c.vector(),
			})
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

// TestSearchSizesAndProfile runs the search workload at a size of the
// caller's with a profile of its searches, and checks that a size that is
// not positive is refused before anything runs.
func TestSearchSizesAndProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "search.pprof")
	r, err := Run(t.Context(), Options{Quick: true, Only: []string{"search"}, SearchSizes: []int{300}, SearchProfile: prof, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 5 {
		t.Fatalf("%d rows, want 5 (indexing and four searches)", len(r.Rows))
	}
	for _, row := range r.Rows {
		if row.Status != "ok" || !strings.Contains(row.What, " 300 passages") {
			t.Errorf("row %q: %s %s", row.What, row.Status, row.Note)
		}
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("profile: %v", err)
	}
	if _, err := Run(t.Context(), Options{Only: []string{"search"}, SearchSizes: []int{1000, 0}}); err == nil {
		t.Error("a size of 0 was taken")
	}
	for n, want := range map[int]string{300: "300", 10_000: "10k", 1_000_000: "1M", 2_500_000: "2500k"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", n, got, want)
		}
	}
}
