package search

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// kernels lists the int8 kernels this machine runs: the pure-Go ones
// always, the SIMD ones where the CPU has them.
func kernels(t *testing.T) []qkernel {
	if len(simdKernels) == 0 {
		t.Log("no SIMD kernel on this CPU: only the pure-Go kernels are checked")
	}
	return append([]qkernel{kernelGo, kernelGoU8}, simdKernels...)
}

func TestDotsKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	ks := kernels(t)
	for _, dim := range []int{16, 32, 48, 64, 96, 384, 400, 1536} {
		for _, rows := range []int{1, 2, 7, 64} {
			data := make([]int8, dim*rows)
			for j := range data {
				data[j] = int8(r.IntN(255) - 127)
			}
			for j := range dim { // the extremes: a row of +127, one of -127
				data[j] = 127
				if rows > 1 {
					data[dim+j] = -127
				}
			}
			for _, k := range ks {
				if dim%k.mult != 0 {
					continue
				}
				// The query's codes in the kernel's form, the largest it
				// takes at the ends.
				want := make([]int32, rows)
				got := make([]int32, rows)
				if k.u8 != nil {
					q := make([]uint8, dim)
					for j := range q {
						q[j] = uint8(r.IntN(256))
					}
					q[0], q[dim-1] = 255, 255
					for i := range rows {
						var s int64
						for j := range dim {
							s += int64(q[j]) * int64(data[i*dim+j])
						}
						want[i] = int32(s)
					}
					k.u8(q, data, got)
				} else {
					limit := k.limit(dim)
					q := make([]int16, dim)
					for j := range q {
						q[j] = int16(r.IntN(2*limit+1) - limit)
					}
					for j := range min(dim, 64) {
						q[j] = int16(limit)
					}
					for i := range rows {
						var s int64
						for j := range dim {
							s += int64(q[j]) * int64(data[i*dim+j])
						}
						if s > math.MaxInt32 || s < math.MinInt32 {
							t.Fatalf("dim %d: reference %d overflows int32", dim, s)
						}
						want[i] = int32(s)
					}
					k.i16(q, data, got)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s kernel, dim %d, %d rows: %v, want %v", k.name, dim, rows, got, want)
				}
			}
		}
	}
}

// TestDotsSameForEveryKernel scores the rows of a store with each kernel
// through qkernel.dots, the query's codes the same for all (int8): the
// integers must be equal, the u8 kernels' offset taken off exactly.
func TestDotsSameForEveryKernel(t *testing.T) {
	const dim, n = 384, 300
	r := rand.New(rand.NewPCG(16, 17))
	st := newVecStore()
	for i, v := range quantCorpus(r, "spiky", n, dim) {
		st.put("o", fmt.Sprint(i), v, vecMeta{})
	}
	for _, id := range []string{"0", "5", "10"} { // rows move
		st.remove(id)
	}
	b := st.blocks[vecKey{"o", dim}]
	qi := make([]int16, dim)
	quantizeQuery(quantCorpus(r, "random", 1, dim)[0], qi, 127)
	qu := make([]uint8, dim)
	for j, c := range qi {
		qu[j] = uint8(c + 128)
	}
	want := make([]int32, len(b.ids))
	kernelGo.dots(qi, nil, b.codes, b.sums, want)
	for _, k := range kernels(t) {
		got := make([]int32, len(b.ids))
		k.dots(qi, qu, b.codes, b.sums, got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %v\nwant %v", k.name, got[:8], want[:8])
		}
	}
}

func TestQuantizeErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	for trial := range 200 {
		dim := 1 + r.IntN(600)
		v := make([]float32, dim)
		for j := range v {
			switch trial % 3 {
			case 0:
				v[j] = float32(r.NormFloat64())
			case 1: // one spike, the rest tiny: the worst case for one scale
				v[j] = float32(r.NormFloat64() * 1e-3)
			case 2:
				v[j] = float32(r.Float64()*2 - 1)
			}
		}
		if trial%3 == 1 {
			v[r.IntN(dim)] = 1
		}
		v = normalize(v)
		codes := make([]int8, dim)
		scale, bound := quantize(v, codes)
		var e float64
		for j := range v {
			if codes[j] < -127 || codes[j] > 127 {
				t.Fatalf("code %d out of range", codes[j])
			}
			d := float64(v[j]) - float64(codes[j])*float64(scale)
			e += d * d
		}
		if math.Sqrt(e) > float64(bound) {
			t.Fatalf("trial %d: error %g above its bound %g", trial, math.Sqrt(e), bound)
		}
		if bound > float32(math.Sqrt(float64(dim)))*scale {
			t.Fatalf("trial %d: bound %g is looser than half a step a code", trial, bound)
		}
	}
}

// quantCorpus makes n unit vectors of dim of the given shape.
func quantCorpus(r *rand.Rand, shape string, n, dim int) [][]float32 {
	base := make([]float32, dim)
	for j := range base {
		base[j] = float32(r.NormFloat64())
	}
	out := make([][]float32, n)
	for i := range out {
		v := make([]float32, dim)
		for j := range v {
			switch shape {
			case "random":
				v[j] = float32(r.NormFloat64())
			case "clustered": // all close to one direction: scores nearly tied
				v[j] = base[j] + float32(r.NormFloat64()*0.01)
			case "duplicates": // ten distinct vectors, each many times: exact ties
				v[j] = float32(math.Sin(float64((i%10 + 1) * (j + 1))))
			case "spiky": // one large component each, the rest small
				v[j] = float32(r.NormFloat64() * 0.02)
			}
		}
		if shape == "spiky" {
			v[r.IntN(dim)] = float32(r.NormFloat64())
		}
		out[i] = normalize(v)
	}
	return out
}

// TestScanQuantExact checks the quantized pass and re-rank against the
// plain float32 scan (the same hits, scores and order) and against a
// brute-force float64 ranking (the same ids), over shapes of data that
// stress the error bound, with and without filters, with both kernels and
// one or two workers.
func TestScanQuantExact(t *testing.T) {
	const dim = 384
	r := rand.New(rand.NewPCG(12, 13))
	roles := []string{"user", "assistant", "tool"}
	ks := kernels(t)
	for _, shape := range []string{"random", "clustered", "duplicates", "spiky"} {
		n := 6000
		if testing.Short() {
			n = 2000
		}
		st := newVecStore()
		vecs := quantCorpus(r, shape, n, dim)
		kind := func(i int) string {
			if i%5 == 0 {
				return KindMessage
			}
			return KindPassage
		}
		for i, v := range vecs {
			st.put("o", fmt.Sprintf("v%05d", i), v, vecMeta{kind: kind(i), role: roles[i%3], time: int64(i)})
		}
		// Replace and remove some, so rows move inside the block.
		for i := 0; i < n; i += 7 {
			id := fmt.Sprintf("v%05d", i)
			if i%2 == 0 {
				st.remove(id)
				continue
			}
			vecs[i] = quantCorpus(r, shape, 1, dim)[0]
			st.put("o", id, vecs[i], vecMeta{kind: kind(i), role: roles[i%3], time: int64(i)})
		}
		blocks := []*vecBlock{st.blocks[vecKey{"o", dim}]}
		filters := map[string]*vecFilter{
			"all":   {after: math.MinInt64},
			"roles": {roles: []string{"tool", "user"}, after: math.MinInt64},
			"time":  {after: int64(n / 4), before: int64(n / 2)},
			"kind":  {kind: KindPassage, after: math.MinInt64},
		}
		for fname, f := range filters {
			for _, k := range []int{1, 10, 100} {
				for qn := range 4 {
					var q []float32
					if qn%2 == 0 {
						q = quantCorpus(r, "random", 1, dim)[0]
					} else { // a query near a stored vector
						q = slices.Clone(vecs[r.IntN(n)])
						q[r.IntN(dim)] += 0.05
						q = normalize(q)
					}
					want, wantTotal := scanFloat(blocks, q, f, k, 1)
					for _, kern := range ks {
						for _, workers := range []int{1, 2} {
							got, total := scanQuant(blocks, q, f, k, kern, workers)
							if total != wantTotal || !slices.Equal(got, want) {
								t.Fatalf("%s/%s k=%d q%d %s×%d: total %d, hits %v\nwant total %d, hits %v", shape, fname, k, qn, kern.name, workers, total, got, wantTotal, want)
							}
						}
					}
					if shape != "random" {
						continue // ties and near-ties: float64 may order them otherwise
					}
					ref := bruteForce64(blocks[0], q, f, k)
					ids := make([]string, len(want))
					for i := range want {
						ids[i] = want[i].id
					}
					if !slices.Equal(ids, ref) {
						t.Fatalf("random/%s k=%d q%d: %v, float64 reference %v", fname, k, qn, ids, ref)
					}
				}
			}
		}
	}
}

// bruteForce64 ranks every row that passes f in float64, best first.
func bruteForce64(b *vecBlock, q []float32, f *vecFilter, k int) []string {
	type hit struct {
		s  float64
		id string
	}
	dim := len(q)
	var all []hit
	for i, id := range b.ids {
		if !f.match(&b.meta[i]) {
			continue
		}
		var s float64
		for j := range dim {
			s += float64(q[j]) * float64(b.data[i*dim+j])
		}
		all = append(all, hit{s, id})
	}
	slices.SortFunc(all, func(a, b hit) int {
		if a.s != b.s {
			if a.s > b.s {
				return -1
			}
			return 1
		}
		return cmpString(a.id, b.id)
	})
	var ids []string
	for _, h := range all[:min(k, len(all))] {
		ids = append(ids, h.id)
	}
	return ids
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestScanTakesQuantizedPass checks that a large scan goes through
// scanQuant where the CPU has the kernel, and that it agrees with the plain
// scan there.
func TestScanTakesQuantizedPass(t *testing.T) {
	if len(simdKernels) == 0 {
		t.Skip("no SIMD kernel on this CPU: scans are plain float32")
	}
	if !useQuant(quantMinRows, 384, 10) || useQuant(quantMinRows-1, 384, 10) || useQuant(quantMinRows, 100, 10) || useQuant(quantMinRows, 384, quantMinRows) {
		t.Fatal("useQuant chooses wrongly")
	}
}

// TestSearchSameWithQuantizedPass runs vector and hybrid searches through
// the index with the quantized pass forced on and off: the pages must be
// the same, scores included.
func TestSearchSameWithQuantizedPass(t *testing.T) {
	if len(simdKernels) == 0 {
		t.Skip("no SIMD kernel on this CPU: scans are plain float32")
	}
	ix, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	const n, dim = 3000, 32
	r := rand.New(rand.NewPCG(14, 15))
	words := []string{"pump", "oil", "valve", "gauge", "filter", "seal", "drain", "motor"}
	vecs := quantCorpus(r, "random", n, dim)
	var b Batch
	for i, v := range vecs {
		text := words[r.IntN(len(words))] + " " + words[r.IntN(len(words))]
		b.Put = append(b.Put, Doc{ID: fmt.Sprintf("p%05d", i), Kind: KindPassage, Owner: "o", Text: text, Vector: v})
	}
	b.Seq = 1
	if err := ix.Apply(b); err != nil {
		t.Fatal(err)
	}
	defer func(m int) { quantMinRows = m }(quantMinRows)
	for qn := range 10 {
		q := Query{Owners: []string{"o"}, Kind: KindPassage, Vector: quantCorpus(r, "random", 1, dim)[0], Limit: 20, Offset: qn}
		if qn%2 == 1 {
			q.Text = words[qn%len(words)]
		}
		quantMinRows = 1 << 30
		want, err := ix.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		quantMinRows = 1
		got, err := ix.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Hits) != 20 || got.Total != want.Total || fmt.Sprint(got.Hits) != fmt.Sprint(want.Hits) {
			t.Fatalf("query %d: quantized %d hits (total %d) %v\nplain %d hits (total %d) %v", qn, len(got.Hits), got.Total, got.Hits, len(want.Hits), want.Total, want.Hits)
		}
	}
}

func TestFilterAllOf(t *testing.T) {
	st := newVecStore()
	st.put("o", "a", []float32{1, 0}, vecMeta{kind: KindPassage})
	st.put("o", "b", []float32{0, 1}, vecMeta{kind: KindPassage})
	b := st.blocks[vecKey{"o", 2}]
	none := math.MinInt64
	cases := []struct {
		f    vecFilter
		want bool
	}{
		{vecFilter{after: int64(none)}, true},
		{vecFilter{kind: KindPassage, after: int64(none)}, true},
		{vecFilter{kind: KindMessage, after: int64(none)}, false},
		{vecFilter{kind: KindPassage, roles: []string{"user"}, after: int64(none)}, false},
		{vecFilter{kind: KindPassage, after: 5}, false},
	}
	for i, c := range cases {
		if got := c.f.allOf(b); got != c.want {
			t.Errorf("case %d: allOf = %v", i, got)
		}
	}
	st.put("o", "m", []float32{1, 1}, vecMeta{kind: KindMessage})
	if (&vecFilter{kind: KindPassage, after: int64(none)}).allOf(b) {
		t.Error("a block with a message is not all passages")
	}
	st.remove("m")
	if !(&vecFilter{kind: KindPassage, after: int64(none)}).allOf(b) {
		t.Error("the message removed, the block is all passages again")
	}
}
