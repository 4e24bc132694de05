package cpubackend

import "fmt"

// checkGemm panics, as gonum does, when an operand is too short for its shape: a C library
// would read or write out of bounds instead. Callers validate shapes first, so reaching this
// panic is a bug in gochat, not bad input.
func checkGemm(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) {
	ar, ac := Stored(transA, m, k)
	br, bc := Stored(transB, k, n)
	if !fits(ar, ac, lda, lenA) || !fits(br, bc, ldb, lenB) || !fits(m, n, ldc, lenC) {
		panic(fmt.Sprintf("cpubackend: gemm operands too short: m=%d n=%d k=%d a=%d/%d b=%d/%d c=%d/%d",
			m, n, k, lenA, lda, lenB, ldb, lenC, ldc))
	}
}

// Stored gives the stored shape of a product's operand whose logical shape is r×c: the
// transpose's when the operand is stored transposed. Engines that hand products on to a
// device lay their operands out with it.
func Stored(trans bool, r, c int) (int, int) {
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
	return ld >= c && Span(r, c, ld) <= n
}

// Span is the number of elements a row-major r×c matrix with row stride ld covers.
func Span(r, c, ld int) int { return (r-1)*ld + c }

// Spans are the elements a product's A, B and C cover, stored as the flags and strides say.
func Spans(transA, transB bool, m, n, k, lda, ldb, ldc int) (a, b, c int) {
	ra, ca := Stored(transA, m, k)
	rb, cb := Stored(transB, k, n)
	return Span(ra, ca, lda), Span(rb, cb, ldb), Span(m, n, ldc)
}
