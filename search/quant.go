package search

import (
	"math"

	"github.com/viterin/vek/vek32"
)

// A block's vectors are also held as int8, one scale per row, for a first
// pass that reads a quarter of the bytes: at 100k × 384 dims the float32
// rows are 150 MB, which one scan pulls through memory, and the scan is
// bound by that, not by arithmetic. The first pass gives every row an
// approximate score and a bound on its error; a final re-rank scores
// exactly (the same float32 dot product a plain scan takes) every row whose
// bound lets it reach the top k, and no other row can. So the hits are the
// plain scan's hits, scores and order included.
//
// The error bound of row x (unit length) against the query q (unit): with
// x̂ = s·c the row's int8 codes scaled back and q̂ = t·d the query's codes
// (int16, or int8 for the VNNI kernel) scaled back,
//
//	|x·q − x̂·q̂| ≤ |(x−x̂)·q| + |x̂·(q−q̂)| ≤ ‖x−x̂‖ + (1+‖x−x̂‖)·‖q−q̂‖
//
// by Cauchy–Schwarz, and s·t·(c·d) is x̂·q̂ exactly (c·d in int32). ‖x−x̂‖ is
// kept per row (errs, and the block's maxErr), ‖q−q̂‖ computed per query; a slack covers float32 rounding in the exact dot product (at most
// dim·2⁻²⁴ of a unit-length product) and in the approximate score.

// quantize writes v's int8 codes into dst (len(v)) and returns the scale
// that maps them back and ‖v − scale·codes‖, rounded up.
func quantize(v []float32, dst []int8) (scale, err float32) {
	var m float32
	for _, x := range v {
		m = max(m, abs32(x))
	}
	if m == 0 {
		clear(dst)
		return 0, 0
	}
	return quantizeTo(v, dst, m/127, 127/m, 127)
}

// quantizeTo writes the codes of v at the given scale (inv its inverse),
// each within ±limit, and returns the scale and ‖v − scale·codes‖, rounded
// up. The rounding of a code need not be exact: the error is measured on
// the codes written.
func quantizeTo[T int8 | int16](v []float32, dst []T, scale, inv float32, limit int32) (float32, float32) {
	dst = dst[:len(v)]
	s := float64(scale)
	var e float64
	for i, x := range v {
		y := x * inv
		var c int32
		if y >= 0 {
			c = min(int32(y+0.5), limit)
		} else {
			c = max(int32(y-0.5), -limit)
		}
		dst[i] = T(c)
		d := float64(x) - float64(c)*s // exact: a product of two float32s
		e += d * d
	}
	return scale, roundUp(math.Sqrt(e) * (1 + 1e-9))
}

// quantizeQuery writes q's int16 codes, at most limit in magnitude, into
// dst and returns the scale and ‖q − scale·codes‖, rounded up.
func quantizeQuery(q []float32, dst []int16, limit int) (scale, err float32) {
	var m float32
	for _, x := range q {
		m = max(m, abs32(x))
	}
	if m == 0 {
		clear(dst)
		return 0, 0
	}
	return quantizeTo(q, dst, m/float32(limit), float32(limit)/m, int32(limit))
}

// queryLimit is the largest query code that keeps a row's integer dot
// product inside int32 (dim × 127 × limit < 2³¹), at most int16's range.
func queryLimit(dim int) int {
	return min(math.MaxInt16, math.MaxInt32/(127*max(dim, 1)))
}

// roundUp returns x as a float32 no smaller than x.
func roundUp(x float64) float32 {
	f := float32(x)
	if float64(f) < x {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// dotsGo is the int8 × int16 kernel in plain Go: out[r] is the dot product
// of q with row r of data (rows of len(q) codes).
func dotsGo(q []int16, data []int8, out []int32) {
	dim := len(q)
	for r := range out {
		row := data[r*dim : (r+1)*dim]
		var s0, s1, s2, s3 int32
		j := 0
		for ; j+4 <= dim; j += 4 {
			s0 += int32(q[j]) * int32(row[j])
			s1 += int32(q[j+1]) * int32(row[j+1])
			s2 += int32(q[j+2]) * int32(row[j+2])
			s3 += int32(q[j+3]) * int32(row[j+3])
		}
		for ; j < dim; j++ {
			s0 += int32(q[j]) * int32(row[j])
		}
		out[r] = s0 + s1 + s2 + s3
	}
}

// dotsU8Go is the kernel of uint8 query codes in plain Go: out[r] is the
// dot product of q with row r of data.
func dotsU8Go(q []uint8, data []int8, out []int32) {
	dim := len(q)
	for r := range out {
		row := data[r*dim : (r+1)*dim]
		var s0, s1, s2, s3 int32
		j := 0
		for ; j+4 <= dim; j += 4 {
			s0 += int32(q[j]) * int32(row[j])
			s1 += int32(q[j+1]) * int32(row[j+1])
			s2 += int32(q[j+2]) * int32(row[j+2])
			s3 += int32(q[j+3]) * int32(row[j+3])
		}
		for ; j < dim; j++ {
			s0 += int32(q[j]) * int32(row[j])
		}
		out[r] = s0 + s1 + s2 + s3
	}
}

// A qkernel scores rows of int8 codes against a query's codes, given as
// int16 (i16) or as int8 codes plus 128 in uint8 (u8: the form of the
// AVX-512 VNNI instruction, which multiplies unsigned by signed bytes; the
// caller takes 128 × the row's code sum off each result).
type qkernel struct {
	name string
	i16  func(q []int16, data []int8, out []int32)
	u8   func(q []uint8, data []int8, out []int32)
	mult int  // the dimensions it takes are multiples of this
	simd bool // faster than vek's float32 kernel; the plain-Go ones are not
}

// limit is the largest query code the kernel takes at dim: int32 must hold
// dim × 127 × the largest code.
func (k qkernel) limit(dim int) int {
	if k.u8 != nil {
		if dim*255*127 > math.MaxInt32 {
			return 0
		}
		return 127
	}
	return queryLimit(dim)
}

// dots writes to out the dot products of the query's codes qi (qu: the
// same plus 128, for a u8 kernel) with rows of codes whose sums are sums.
func (k qkernel) dots(qi []int16, qu []uint8, codes []int8, sums, out []int32) {
	if k.u8 == nil {
		k.i16(qi, codes, out)
		return
	}
	k.u8(qu, codes, out)
	for r, sum := range sums[:len(out)] {
		out[r] -= 128 * sum
	}
}

var (
	kernelGo   = qkernel{name: "go-i16", i16: dotsGo, mult: 1}
	kernelGoU8 = qkernel{name: "go-u8", u8: dotsU8Go, mult: 1}
	// simdKernels are the SIMD kernels this CPU runs, best first.
	simdKernels = cpuKernels()
)

// kernelFor returns the best SIMD kernel for dim, if there is one.
func kernelFor(dim int) (qkernel, bool) {
	for _, k := range simdKernels {
		if dim%k.mult == 0 && k.limit(dim) >= 127 {
			return k, true
		}
	}
	return qkernel{}, false
}

// quantChunk is how many rows one kernel call scores: its output stays in
// the first-level cache.
const quantChunk = 256

// quantMinRows is the number of candidate rows below which a scan is plain
// float32: a small scan is cheap either way. Tests lower it.
var quantMinRows = 4096

// useQuant reports whether a scan of rows vectors of dim for the best k
// takes the quantized pass.
func useQuant(rows, dim, k int) bool {
	_, ok := kernelFor(dim)
	return ok && rows >= quantMinRows && 8*k <= rows
}

// scanQuant is scan's quantized pass and exact re-rank, with the given
// kernel; every block has dimension len(q).
func scanQuant(blocks []*vecBlock, q []float32, f *vecFilter, k int, kern qkernel, workers int) ([]scored, int) {
	dim := len(q)
	qi := make([]int16, dim)
	ts, terr := quantizeQuery(q, qi, kern.limit(dim))
	var qu []uint8
	if kern.u8 != nil {
		qu = make([]uint8, dim)
		for j, c := range qi {
			qu[j] = uint8(c + 128)
		}
	}
	slack := float32(2*float64(dim)*0x1p-24 + 1e-5)

	ps := pieces(blocks)
	type cand struct {
		b  *vecBlock
		i  int
		ub float32
	}
	type result struct {
		lbs   lowHeap
		cands []cand
		count int
		lower float32 // the k-th best lower bound this worker has seen
		out   []int32
	}
	results := make([]result, workers)
	for w := range results {
		results[w] = result{lbs: lowHeap{k: k}, lower: float32(math.Inf(-1)), out: make([]int32, quantChunk)}
	}
	parallel(workers, len(ps), func(w, p int) {
		res := &results[w]
		pc := ps[p]
		b := pc.b
		everything := f.allOf(b)
		c := (1+b.maxErr)*terr + slack
		for lo := pc.lo; lo < pc.hi; lo += quantChunk {
			hi := min(lo+quantChunk, pc.hi)
			o := res.out[:hi-lo]
			kern.dots(qi, qu, b.codes[lo*dim:hi*dim], b.sums[lo:hi], o)
			scales, errs := b.scales[lo:hi], b.errs[lo:hi]
			for r, d := range o {
				if !everything && !f.match(&b.meta[lo+r]) {
					continue
				}
				res.count++
				a := float32(d) * scales[r] * ts
				bound := errs[r] + c + 1e-6*abs32(a)
				if a+bound < res.lower {
					continue
				}
				res.cands = append(res.cands, cand{b, lo + r, a + bound})
				if res.lbs.offer(a - bound) {
					res.lower = res.lbs.min()
				}
			}
		}
	})
	// The k-th best lower bound of all: at least k rows score that much, so
	// a row whose upper bound is below it cannot be among the best k.
	all := lowHeap{k: k}
	total := 0
	for w := range results {
		total += results[w].count
		for _, lb := range results[w].lbs.h {
			all.offer(lb)
		}
	}
	lower := float32(math.Inf(-1))
	if k > 0 && len(all.h) == k {
		lower = all.min()
	}
	top := topK{k: k}
	for w := range results {
		for _, c := range results[w].cands {
			if c.ub < lower {
				continue
			}
			s := vek32.Dot(q, c.b.data[c.i*dim:(c.i+1)*dim])
			if len(top.h) < k || s >= top.h[0].score {
				top.offer(scored{score: s, id: c.b.ids[c.i], owner: c.b.key.owner, time: c.b.meta[c.i].time})
			}
		}
	}
	return top.sorted(), total
}

// lowHeap keeps the k largest values offered, smallest at h[0].
type lowHeap struct {
	k int
	h []float32
}

func (l *lowHeap) min() float32 { return l.h[0] }

// offer adds x if it is among the k largest so far and reports whether the
// heap is full and its minimum may have changed.
func (l *lowHeap) offer(x float32) bool {
	if len(l.h) < l.k {
		l.h = append(l.h, x)
		for i := len(l.h) - 1; i > 0; {
			p := (i - 1) / 2
			if l.h[p] <= l.h[i] {
				break
			}
			l.h[p], l.h[i] = l.h[i], l.h[p]
			i = p
		}
		return len(l.h) == l.k
	}
	if l.k == 0 || x <= l.h[0] {
		return false
	}
	l.h[0] = x
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(l.h) {
			break
		}
		if c+1 < len(l.h) && l.h[c+1] < l.h[c] {
			c++
		}
		if l.h[i] <= l.h[c] {
			break
		}
		l.h[i], l.h[c] = l.h[c], l.h[i]
		i = c
	}
	return true
}
