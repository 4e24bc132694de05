package layers

import (
	"math"
	"testing"
)

// TestFastMathAccuracy bounds the float32 exp and tanh against float64 math over their
// useful ranges: relative error 3e-7 for exp, absolute 3e-7 for tanh.
func TestFastMathAccuracy(t *testing.T) {
	var worstExp, worstTanh float64
	for x := -87.0; x < 88; x += 0.00731 {
		x32 := float32(x)
		want := math.Exp(float64(x32))
		worstExp = math.Max(worstExp, math.Abs(float64(exp32(x32))-want)/want)
		if math.Abs(x) < 20 {
			worstTanh = math.Max(worstTanh, math.Abs(float64(tanh32(x32))-math.Tanh(float64(x32))))
		}
	}
	if worstExp > 3e-7 || worstTanh > 3e-7 {
		t.Fatalf("exp32 worst relative error %g, tanh32 worst absolute error %g", worstExp, worstTanh)
	}
	if exp32(-200) != 0 || math.IsInf(float64(exp32(200)), 0) || tanh32(100) != 1 || tanh32(-100) != -1 {
		t.Fatalf("limits: exp32(-200)=%g exp32(200)=%g tanh32(±100)=%g,%g", exp32(-200), exp32(200), tanh32(100), tanh32(-100))
	}
}
