package layers

import "golang.org/x/sys/cpu"

// hasAVX2 selects the vector exp on processors with AVX2 and FMA.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// expAffineAVX2 sets dst[i] = exp(a·src[i] + b) for i < n (a multiple of 8), eight at a
// time, with the polynomial of expAffine32, and returns their sum.
//
//go:noescape
func expAffineAVX2(dst, src *float32, n int, a, b float32) float32

// expAffineVector does the largest multiple of 8 elements it can with AVX2, returning how
// many it did and their sum.
func expAffineVector(dst, src []float32, a, b float32) (int, float32) {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	return n, expAffineAVX2(&dst[0], &src[0], n, a, b)
}
