package layers

import (
	"gochat/cpubackend"

	"gorgonia.org/tensor"
)

// Gemm is what an engine offers custom ops for matrix products: row-major
// C = alpha·op(A)·op(B) + beta·C with row strides lda, ldb, ldc. cpubackend.Engine
// implements it, and so do the accelerator engines.
type Gemm interface {
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

// gemmOf returns the engine of t when it does matrix products, else the process's BLAS.
func gemmOf(t tensor.Tensor) Gemm {
	if g, ok := t.Engine().(Gemm); ok {
		return g
	}
	return cpubackend.Default()
}

// gemm calls the engine's Sgemm or Dgemm for T.
func gemm[T Float](e Gemm, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch c := any(c).(type) {
	case []float32:
		e.Sgemm(transA, transB, m, n, k, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), c, ldc)
	case []float64:
		e.Dgemm(transA, transB, m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), c, ldc)
	}
}
