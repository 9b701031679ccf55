//go:build amd64 && !purego

package search

import "golang.org/x/sys/cpu"

// dotsAVX2 is dotsGo in AVX2 (quant_amd64.s): rows of dim codes, dim a
// multiple of 16.
//
//go:noescape
func dotsAVX2(q *int16, data *int8, dim, rows int, out *int32)

func dotsAVX2Slices(q []int16, data []int8, out []int32) {
	dim := len(q)
	if len(out) == 0 {
		return
	}
	if dim%16 != 0 || len(data) < dim*len(out) {
		panic("search: dotsAVX2 needs rows of a multiple of 16 codes")
	}
	dotsAVX2(&q[0], &data[0], dim, len(out), &out[0])
}

func kernel() (func([]int16, []int8, []int32), bool) {
	if cpu.X86.HasAVX2 {
		return dotsAVX2Slices, true
	}
	return dotsGo, false
}
