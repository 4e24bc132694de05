package sgemm

// The microkernels of kernel_arm64.s; their arguments are those of microKernel's fields.

//go:noescape
func gemmNEON(k int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func axpy4NEON(n int, x, m *float32, ldm int, y *float32)

//go:noescape
func dot4NEON(k int, x, m *float32, ldm int, y *float32)

//go:noescape
func dot4q8NEON(k int, x *float32, m *int8, ldm int, y *float32)

// neonKernel holds an 8×12 tile in 24 of the 32 vector registers.
var neonKernel = microKernel{
	name: "neon", mr: 8, nr: 12, kc: 256, nc: 768,
	gemm: gemmNEON, axpy4: axpy4NEON, dot4: dot4NEON, dot4q8: dot4q8NEON,
}

// available: NEON is part of every arm64 processor.
func available() []*microKernel { return []*microKernel{&neonKernel, &goKernel} }
