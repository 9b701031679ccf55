//go:build amd64 && !purego

package search

import "golang.org/x/sys/cpu"

// dotsAVX2 is dotsGo in AVX2 (quant_amd64.s): rows of dim codes, dim a
// multiple of 16.
//
//go:noescape
func dotsAVX2(q *int16, data *int8, dim, rows int, out *int32)

// dotsVNNI is dotsU8Go in AVX-512 VNNI on 256-bit registers
// (quant_amd64.s): rows of dim codes, dim a multiple of 32.
//
//go:noescape
func dotsVNNI(q *uint8, data *int8, dim, rows int, out *int32)

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

func dotsVNNISlices(q []uint8, data []int8, out []int32) {
	dim := len(q)
	if len(out) == 0 {
		return
	}
	if dim%32 != 0 || len(data) < dim*len(out) {
		panic("search: dotsVNNI needs rows of a multiple of 32 codes")
	}
	dotsVNNI(&q[0], &data[0], dim, len(out), &out[0])
}

func cpuKernels() []qkernel {
	var ks []qkernel
	if cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL {
		ks = append(ks, qkernel{name: "avx512vnni", u8: dotsVNNISlices, mult: 32, simd: true})
	}
	if cpu.X86.HasAVX2 {
		ks = append(ks, qkernel{name: "avx2", i16: dotsAVX2Slices, mult: 16, simd: true})
	}
	return ks
}
