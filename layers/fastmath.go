package layers

import "math"

// expf is e^x. float32 uses a range-reduced polynomial (relative error below 2e-7, about
// twice as fast as math.Exp); float64 uses math.Exp, for gradient checks.
func expf[T Float](x T) T {
	if v, ok := any(x).(float32); ok {
		return T(exp32(v))
	}
	return T(math.Exp(float64(x)))
}

// tanhf is tanh(x), float32 through exp32, float64 through math.Tanh.
func tanhf[T Float](x T) T {
	if v, ok := any(x).(float32); ok {
		return T(tanh32(v))
	}
	return T(math.Tanh(float64(x)))
}

// logf is the natural logarithm (called once per row, so no fast path is needed).
func logf[T Float](x T) T { return T(math.Log(float64(x))) }

// sqrtf is the square root.
func sqrtf[T Float](x T) T { return T(math.Sqrt(float64(x))) }

func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375    // ln 2 split so that n·ln2hi is exact
		ln2lo = -2.12194440e-4 // ln 2 - ln2hi
		round = 12582912.0     // 1.5·2^23: x + round leaves round(x) in the low mantissa bits
	)
	if x > 88.3 {
		x = 88.3
	} else if x < -87.3 {
		return 0
	}
	f := x*log2e + round
	n := f - round
	r := x - n*ln2hi - n*ln2lo // |r| <= ln2/2
	r2 := r * r
	p := (1 + r) + r2*((0.5+r*(1.0/6))+r2*((1.0/24+r*(1.0/120))+r2*(1.0/720+r*(1.0/5040))))
	scale := math.Float32frombits(uint32(int32(math.Float32bits(f))-0x4B400000+127) << 23)
	return p * scale
}

func tanh32(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	if a < 0.25 {
		// Taylor series; the first omitted term is below 1e-10 relative here.
		x2 := x * x
		return x * (1 + x2*(-1.0/3+x2*(2.0/15+x2*(-17.0/315+x2*(62.0/2835+x2*(-1382.0/155925))))))
	}
	t := 1 - 2/(exp32(2*a)+1)
	if x < 0 {
		return -t
	}
	return t
}
