//go:build !amd64

package layers

// expAffineVector has no vector version here.
func expAffineVector(dst, src []float32, a, b float32) (int, float32) { return 0, 0 }
