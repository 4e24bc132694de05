package cpubackend

import "fmt"

// checkGemm panics, as gonum does, when an operand is too short for its shape: a C library
// would read or write out of bounds instead. Callers validate shapes first, so reaching this
// panic is a bug in gochat, not bad input.
func checkGemm(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) {
	ar, ac := stored(transA, m, k)
	br, bc := stored(transB, k, n)
	if !fits(ar, ac, lda, lenA) || !fits(br, bc, ldb, lenB) || !fits(m, n, ldc, lenC) {
		panic(fmt.Sprintf("cpubackend: gemm operands too short: m=%d n=%d k=%d a=%d/%d b=%d/%d c=%d/%d",
			m, n, k, lenA, lda, lenB, ldb, lenC, ldc))
	}
}

// stored gives the stored shape of an operand whose logical shape is r×c.
func stored(trans bool, r, c int) (int, int) {
	if trans {
		return c, r
	}
	return r, c
}

// fits reports whether a row-major r×c matrix with row stride ld fits in n elements.
func fits(r, c, ld, n int) bool {
	if r == 0 || c == 0 {
		return true
	}
	return ld >= c && (r-1)*ld+c <= n
}
