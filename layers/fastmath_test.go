package layers

import (
	"math"
	"slices"
	"testing"
)

// TestFastMathAccuracy bounds the float32 row functions (vector and scalar parts) against
// float64 math over their useful ranges: relative error 3e-7 for exp, absolute 3e-7 for
// tanh; every length from 0 to 20 exercises the scalar tail after the vector part.
func TestFastMathAccuracy(t *testing.T) {
	var xs []float32
	for x := -87.0; x < 88; x += 0.00731 {
		xs = append(xs, float32(x))
	}
	e, th := make([]float32, len(xs)), make([]float32, len(xs))
	// a·x + b with b = -88 keeps the sum finite in float32.
	sum := expAffine(e, xs, 1, -88)
	var wantSum float64
	for _, x := range xs {
		wantSum += math.Exp(float64(x) - 88)
	}
	expAffine(e, xs, 1, 0)
	tanhScaled(th, xs, 0.25)
	var worstExp, worstTanh float64
	for i, x := range xs {
		want := math.Exp(float64(x))
		worstExp = math.Max(worstExp, math.Abs(float64(e[i])-want)/want)
		worstTanh = math.Max(worstTanh, math.Abs(float64(th[i])-math.Tanh(0.25*float64(x))))
	}
	if worstExp > 3e-7 || worstTanh > 3e-7 || math.Abs(float64(sum)-wantSum)/wantSum > 1e-6 {
		t.Fatalf("exp worst relative error %g, tanh worst absolute error %g, sum %g want %g", worstExp, worstTanh, sum, wantSum)
	}
	inPlace := slices.Clone(xs) // dst may be src
	tanhScaled(inPlace, inPlace, 0.25)
	if !slices.Equal(inPlace, th) {
		t.Fatal("tanhScaled in place differs from tanhScaled into another slice")
	}
	for n := 0; n <= 20; n++ {
		src, dst := xs[1000:1000+n], make([]float32, n)
		got := expAffine(dst, src, 0.5, 1)
		var want float64
		for i, x := range src {
			w := math.Exp(0.5*float64(x) + 1)
			want += w
			if math.Abs(float64(dst[i])-w)/w > 3e-7 {
				t.Fatalf("length %d, element %d: %v, want %v", n, i, dst[i], w)
			}
		}
		if math.Abs(float64(got)-want) > 1e-6*want {
			t.Fatalf("length %d: sum %v, want %v", n, got, want)
		}
	}
	limits := []float32{-200, 200, 1e-30, -1e-30, 0, 0, 0, 0, -200, 200}
	got := make([]float32, len(limits))
	expAffine(got, limits, 1, 0)
	if got[0] > 1.3e-38 || math.IsInf(float64(got[1]), 0) || got[2] != 1 || got[8] > 1.3e-38 || math.IsInf(float64(got[9]), 0) {
		t.Fatalf("exp limits: %v", got)
	}
	tanhScaled(got, limits, 1)
	if got[0] != -1 || got[1] != 1 || got[2] != 1e-30 || got[3] != -1e-30 {
		t.Fatalf("tanh limits: %v", got)
	}
}
