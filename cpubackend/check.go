package cpubackend

import (
	"fmt"
	"gochat/backend"
)

// checkGemm panics, as gonum does, when an operand is too short for its shape: a C library
// would read or write out of bounds instead. Callers validate shapes first, so reaching this
// panic is a bug in gochat, not bad input.
func checkGemm(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) {
	ar, ac := backend.Stored(transA, m, k)
	br, bc := backend.Stored(transB, k, n)
	if !fits(ar, ac, lda, lenA) || !fits(br, bc, ldb, lenB) || !fits(m, n, ldc, lenC) {
		panic(fmt.Sprintf("cpubackend: gemm operands too short: m=%d n=%d k=%d a=%d/%d b=%d/%d c=%d/%d",
			m, n, k, lenA, lda, lenB, ldb, lenC, ldc))
	}
}

// fits reports whether a row-major r×c matrix with row stride ld fits in n elements.
func fits(r, c, ld, n int) bool {
	if r == 0 || c == 0 {
		return true
	}
	return ld >= c && backend.Span(r, c, ld) <= n
}
