package cpubackend

import (
	"gochat/internal/sgemm"

	"gonum.org/v1/gonum/blas/gonum"
)

// GoKernels is gochat's own single-precision product (internal/sgemm: packed, cache-blocked,
// with assembly microkernels for AVX-512, AVX2 and NEON), split across goroutines like
// OpenBLAS's, for machines without a system BLAS. On the 2-core development VM it reaches
// 97% of OpenBLAS's rate at 1024×768×3072 (benchmarks/README.md). Float64 products, for
// tests and checks, are gonum's.
type GoKernels struct{}

// Name implements BLAS, naming the microkernel in use.
func (GoKernels) Name() string { return "go (" + sgemm.Kernel() + ")" }

// Sgemm implements BLAS: slabs of C on several goroutines, each a call of sgemm.Sgemm.
func (GoKernels) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	splitGemm(m, n, k, func(i0, i1, j0, j1 int) {
		oa, ob, oc := slabOffsets(transA, transB, i0, j0, lda, ldb, ldc)
		sgemm.Sgemm(transA, transB, i1-i0, j1-j0, k, alpha, a[min(oa, len(a)):], lda, b[min(ob, len(b)):], ldb, beta, c[oc:], ldc)
	})
}

// Dgemm implements BLAS with gonum.
func (GoKernels) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gonum.Implementation{}.Dgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// vectorised says whether gochat's kernels have assembly for this processor; where they
// have not, gonum's (which has some) is the faster fallback.
func vectorised() bool { return sgemm.Kernel() != "go" }
