#include "textflag.h"

// Constants of exp, each repeated over 8 lanes.
DATA expconst<>+0(SB)/4, $-87.3          // lower clamp
DATA expconst<>+4(SB)/4, $88.3           // upper clamp
DATA expconst<>+8(SB)/4, $1.44269504088896341 // log2(e)
DATA expconst<>+12(SB)/4, $12582912.0    // 1.5·2^23: rounds to an integer
DATA expconst<>+16(SB)/4, $0.693359375   // ln2 high part
DATA expconst<>+20(SB)/4, $-2.12194440e-4 // ln2 low part
DATA expconst<>+24(SB)/4, $1.98412698e-4 // 1/5040
DATA expconst<>+28(SB)/4, $1.38888889e-3 // 1/720
DATA expconst<>+32(SB)/4, $8.33333333e-3 // 1/120
DATA expconst<>+36(SB)/4, $4.16666667e-2 // 1/24
DATA expconst<>+40(SB)/4, $1.66666667e-1 // 1/6
DATA expconst<>+44(SB)/4, $0.5
DATA expconst<>+48(SB)/4, $1.0
DATA expconst<>+52(SB)/4, $0x4B3FFF81    // bits(round) - 127, as an integer
GLOBL expconst<>(SB), RODATA|NOPTR, $56

// func expAffineAVX2(dst, src *float32, n int, a, b float32) float32
// dst[i] = exp(a·src[i] + b) for i < n, n a multiple of 8; returns the sum.
TEXT ·expAffineAVX2(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y0
	VBROADCASTSS b+28(FP), Y1
	VBROADCASTSS expconst<>+0(SB), Y8   // lower clamp
	VBROADCASTSS expconst<>+4(SB), Y9   // upper clamp
	VBROADCASTSS expconst<>+8(SB), Y10  // log2e
	VBROADCASTSS expconst<>+12(SB), Y11 // round
	VBROADCASTSS expconst<>+16(SB), Y12 // ln2hi
	VBROADCASTSS expconst<>+20(SB), Y13 // ln2lo
	VBROADCASTSS expconst<>+52(SB), Y14 // exponent bias
	VXORPS Y15, Y15, Y15                // sum

loop:
	CMPQ CX, $8
	JLT done
	VMOVUPS (SI), Y3
	VFMADD213PS Y1, Y0, Y3   // x = a·src + b
	VMAXPS Y8, Y3, Y3
	VMINPS Y9, Y3, Y3
	VMOVAPS Y3, Y4
	VFMADD213PS Y11, Y10, Y4 // f = x·log2e + round
	VSUBPS Y11, Y4, Y5       // n = f − round
	VFNMADD231PS Y12, Y5, Y3 // r = x − n·ln2hi
	VFNMADD231PS Y13, Y5, Y3 // r −= n·ln2lo
	VBROADCASTSS expconst<>+24(SB), Y6
	VBROADCASTSS expconst<>+28(SB), Y7
	VFMADD213PS Y7, Y3, Y6   // p = p·r + 1/720
	VBROADCASTSS expconst<>+32(SB), Y7
	VFMADD213PS Y7, Y3, Y6   // + 1/120
	VBROADCASTSS expconst<>+36(SB), Y7
	VFMADD213PS Y7, Y3, Y6   // + 1/24
	VBROADCASTSS expconst<>+40(SB), Y7
	VFMADD213PS Y7, Y3, Y6   // + 1/6
	VBROADCASTSS expconst<>+44(SB), Y7
	VFMADD213PS Y7, Y3, Y6   // + 1/2
	VBROADCASTSS expconst<>+48(SB), Y7
	VFMADD213PS Y7, Y3, Y6   // + 1
	VFMADD213PS Y7, Y3, Y6   // + 1
	VPSUBD Y14, Y4, Y4       // exponent field of 2^n
	VPSLLD $23, Y4, Y4
	VMULPS Y4, Y6, Y6
	VMOVUPS Y6, (DI)
	VADDPS Y6, Y15, Y15
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP loop

done:
	VEXTRACTF128 $1, Y15, X1
	VADDPS X1, X15, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET
