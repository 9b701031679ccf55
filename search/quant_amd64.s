//go:build amd64 && !purego

#include "textflag.h"

// func dotsAVX2(q *int16, data *int8, dim, rows int, out *int32)
//
// out[r] = Σ_j q[j] × data[r×dim + j] for r < rows, in int32. dim is a
// multiple of 16 and not zero. Each step widens 16 int8 codes to int16
// (VPMOVSXBW), multiplies them by 16 query codes and adds adjacent pairs
// into 8 int32 lanes (VPMADDWD); two accumulators take alternate steps.
TEXT ·dotsAVX2(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ data+8(FP), DI
	MOVQ dim+16(FP), CX
	MOVQ rows+24(FP), DX
	MOVQ out+32(FP), R8
	TESTQ DX, DX
	JE   done
	MOVQ CX, R9
	ANDQ $-32, R9           // the codes the two-step loop covers

row:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	XORQ AX, AX             // code index
	TESTQ R9, R9
	JE   tail

pair:
	VPMOVSXBW (DI)(AX*1), Y2
	VPMOVSXBW 16(DI)(AX*1), Y3
	VPMADDWD  (SI)(AX*2), Y2, Y2
	VPMADDWD  32(SI)(AX*2), Y3, Y3
	VPADDD    Y2, Y0, Y0
	VPADDD    Y3, Y1, Y1
	ADDQ $32, AX
	CMPQ AX, R9
	JLT  pair

tail:
	CMPQ AX, CX
	JGE  sum
	VPMOVSXBW (DI)(AX*1), Y2
	VPMADDWD  (SI)(AX*2), Y2, Y2
	VPADDD    Y2, Y0, Y0

sum:
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, (R8)
	ADDQ $4, R8
	ADDQ CX, DI
	DECQ DX
	JNE  row

done:
	VZEROUPPER
	RET

// func dotsVNNI(q *uint8, data *int8, dim, rows int, out *int32)
//
// out[r] = Σ_j q[j] × data[r×dim + j] for r < rows, in int32, q unsigned
// and data signed bytes. dim is a multiple of 32 and not zero. VPDPBUSD
// multiplies 32 pairs and adds each four products into one of 8 int32
// lanes; two accumulators take alternate steps.
TEXT ·dotsVNNI(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ data+8(FP), DI
	MOVQ dim+16(FP), CX
	MOVQ rows+24(FP), DX
	MOVQ out+32(FP), R8
	TESTQ DX, DX
	JE   vdone
	MOVQ CX, R9
	ANDQ $-64, R9           // the codes the two-step loop covers

vrow:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	XORQ AX, AX             // code index
	TESTQ R9, R9
	JE   vtail

vpair:
	VMOVDQU  (SI)(AX*1), Y2
	VMOVDQU  32(SI)(AX*1), Y3
	VPDPBUSD (DI)(AX*1), Y2, Y0
	VPDPBUSD 32(DI)(AX*1), Y3, Y1
	ADDQ $64, AX
	CMPQ AX, R9
	JLT  vpair

vtail:
	CMPQ AX, CX
	JGE  vsum
	VMOVDQU  (SI)(AX*1), Y2
	VPDPBUSD (DI)(AX*1), Y2, Y0

vsum:
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, (R8)
	ADDQ $4, R8
	ADDQ CX, DI
	DECQ DX
	JNE  vrow

vdone:
	VZEROUPPER
	RET
