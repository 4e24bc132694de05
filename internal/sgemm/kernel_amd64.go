package sgemm

import "golang.org/x/sys/cpu"

// The microkernels of kernel_amd64.s; their arguments are those of microKernel's fields.

//go:noescape
func gemmAVX512(k int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func gemmAVX2(k int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func axpy4AVX2(n int, x, m *float32, ldm int, y *float32)

//go:noescape
func dot4AVX2(k int, x, m *float32, ldm int, y *float32)

//go:noescape
func dot4q8AVX2(k int, x *float32, m *int8, ldm int, y *float32)

//go:noescape
func dot4q8AVX512(k int, x *float32, m *int8, ldm int, y *float32)

// avx512Kernel holds a 14×32 tile in 28 zmm registers. The matrix-vector products, bound by
// memory, are no faster with zmm than with the AVX2 ones.
var avx512Kernel = microKernel{
	name: "avx512", mr: 14, nr: 32, kc: 384, nc: 768,
	gemm: gemmAVX512, axpy4: axpy4AVX2, dot4: dot4AVX2, dot4q8: dot4q8AVX512,
}

// avx2Kernel holds a 6×16 tile in 12 ymm registers.
var avx2Kernel = microKernel{
	name: "avx2", mr: 6, nr: 16, kc: 256, nc: 768,
	gemm: gemmAVX2, axpy4: axpy4AVX2, dot4: dot4AVX2, dot4q8: dot4q8AVX2,
}

func available() []*microKernel {
	var ks []*microKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, &avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, &avx2Kernel)
	}
	return append(ks, &goKernel)
}
