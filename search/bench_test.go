package search

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// The index's searches and Apply are benchmarked in package bench, over
// the search workload's own corpus and fixture (BenchmarkSearch,
// BenchmarkIndex), so that each is measured once. What stays here needs
// this package's insides.

// BenchmarkVectorScan measures the exact top-10 scan alone (no Bleve), over
// 10k, 100k and 1M random vectors of 384 dims in one owner (-short: not
// 1M): the floor under the vector search, which no workload isolates.
// float32 scores every row with vek's kernel (the baseline: what scan did
// before the quantized pass); then the int8 pass and exact re-rank with
// each SIMD kernel the CPU has, the first listed being the one searches
// take.
func BenchmarkVectorScan(b *testing.B) {
	const dims = 384
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%dk", n/1000), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("1M vectors take 2 GB; not with -short")
			}
			r := rand.New(rand.NewPCG(5, 7))
			vector := func() []float32 {
				v := make([]float32, dims)
				for i := range v {
					v[i] = float32(r.NormFloat64())
				}
				return normalize(v)
			}
			st := newVecStore()
			for i := range n {
				st.put("o", fmt.Sprintf("v%07d", i), vector(), vecMeta{kind: KindPassage})
			}
			blocks := []*vecBlock{st.blocks[vecKey{"o", dims}]}
			f := &vecFilter{after: math.MinInt64}
			qs := make([][]float32, 64)
			for i := range qs {
				qs[i] = vector()
			}
			workers := min(runtime.GOMAXPROCS(0), 8)
			b.Run("float32", func(b *testing.B) {
				b.ReportAllocs()
				for i := range b.N {
					scanFloat(blocks, qs[i%len(qs)], f, 10, workers)
				}
			})
			for _, k := range simdKernels {
				b.Run(k.name, func(b *testing.B) {
					b.ReportAllocs()
					for i := range b.N {
						scanQuant(blocks, qs[i%len(qs)], f, 10, k, workers)
					}
				})
			}
		})
	}
}
