package cpubackend

import "gochat/internal/parallel"

// minSplitFLOPs is the work below which a matrix product runs on one thread: about 20 µs
// of one core, against about 1 µs to start and join a goroutine. A product of one row is
// bound by memory, not arithmetic: it is split once its matrix has minSplitElems elements
// (256 KiB of float32, some 20 µs of one core's memory bandwidth).
const (
	minSplitFLOPs = 4 << 20
	minSplitElems = 64 << 10
)

// splitGemm runs a product C (m×n) = op(A)·op(B) (inner dimension k) as slabs of C on
// several goroutines: row slabs when C is tall, column slabs when it is wide. gemm computes
// one slab: rows [i0, i1) and columns [j0, j1) of C.
func splitGemm(m, n, k int, gemm func(i0, i1, j0, j1 int)) {
	rows := m >= n
	extent := n
	if rows {
		extent = m
	}
	// Slabs of at least 16 rows or columns keep the BLAS kernels efficient.
	want := min(parallel.Workers(), 2*m*n*k/minSplitFLOPs, extent/16)
	if m == 1 {
		want = min(parallel.Workers(), n*k/minSplitElems, extent/16)
	}
	parallel.Split(want, func(part, parts int) {
		lo, hi := extent*part/parts, extent*(part+1)/parts
		if rows {
			gemm(lo, hi, 0, n)
		} else {
			gemm(0, m, lo, hi)
		}
	})
}

// slab offsets of the operands for the slab of C at rows i0.., columns j0..: the rows of
// op(A) start at i0 (a column offset when A is transposed), the columns of op(B) at j0.
func slabOffsets(transA, transB bool, i0, j0, lda, ldb, ldc int) (offA, offB, offC int) {
	offA, offB = i0*lda, j0
	if transA {
		offA = i0
	}
	if transB {
		offB = j0 * ldb
	}
	return offA, offB, i0*ldc + j0
}
