package layers

import (
	"math"
	"testing"
)

// TestExpVectorMatchesScalar: the AVX2 kernel and the scalar code give the same values
// (to float32 rounding) and the same sums, on a machine that has AVX2.
func TestExpVectorMatchesScalar(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2 and FMA on this processor")
	}
	src := make([]float32, 1003)
	for i := range src {
		src[i] = float32(i)/7 - 90
	}
	vec, scalar := make([]float32, len(src)), make([]float32, len(src))
	vsum := expAffine(vec, src, 0.5, -3)
	hasAVX2 = false
	ssum := expAffine(scalar, src, 0.5, -3)
	hasAVX2 = true
	for i := range src {
		if math.Abs(float64(vec[i]-scalar[i])) > 3e-7*float64(scalar[i]) {
			t.Fatalf("element %d: vector %v, scalar %v", i, vec[i], scalar[i])
		}
	}
	if math.Abs(float64(vsum-ssum)) > 1e-6*float64(ssum) {
		t.Fatalf("sum: vector %v, scalar %v", vsum, ssum)
	}
}
