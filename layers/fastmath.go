package layers

import "math"

// The transcendental functions of the kernels work on whole rows, so that float32 rows can
// use the processor's vector unit (expAffineVector) and a function call is not paid per
// element. float64 rows, used by gradient checks, use package math.

// expAffine sets dst[i] = exp(a·src[i] + b) and returns their sum. dst may be src.
func expAffine[T Float](dst, src []T, a, b T) T {
	if d, ok := any(dst).([]float32); ok {
		s := any(src).([]float32)[:len(d)]
		n, sum := expAffineVector(d, s, float32(a), float32(b))
		for i := n; i < len(d); i++ {
			d[i] = exp32(float32(a)*s[i] + float32(b))
			sum += d[i]
		}
		return T(sum)
	}
	var sum T
	for i, x := range src[:len(dst)] {
		dst[i] = T(math.Exp(float64(a*x + b)))
		sum += dst[i]
	}
	return sum
}

// tanhScaled sets dst[i] = tanh(scale·src[i]). dst may be src.
func tanhScaled[T Float](dst, src []T, scale T) {
	src = src[:len(dst)]
	if _, ok := any(dst).([]float32); !ok {
		for i, x := range src {
			dst[i] = T(math.Tanh(float64(scale * x)))
		}
		return
	}
	var e [256]T // the exps of a chunk, apart from dst, which may be src
	for lo := 0; lo < len(src); lo += len(e) {
		hi := min(lo+len(e), len(src))
		tanhExps(e[:hi-lo], src[lo:hi], scale)
		for i, x := range src[lo:hi] {
			dst[lo+i] = tanhFromExp(scale*x, e[i])
		}
	}
}

// tanhExps sets e[i] = exp(−2|scale·src[i]|), the one exp tanhFromExp needs.
func tanhExps[T Float](e, src []T, scale T) {
	for i, x := range src[:len(e)] {
		u := scale * x
		if u > 0 {
			u = -u
		}
		e[i] = u
	}
	expAffine(e, e, 2, 0)
}

// tanhFromExp is tanh(u) given e = exp(−2|u|): (1 − e)/(1 + e) with u's sign, or below
// |u| = 1/4, where that difference loses digits, the Taylor series.
func tanhFromExp[T Float](u, e T) T {
	a := u
	if a < 0 {
		a = -a
	}
	t := (1 - e) / (1 + e)
	if a < 0.25 {
		u2 := u * u
		t = a * (1 + u2*(-1.0/3+u2*(2.0/15+u2*(-17.0/315+u2*(62.0/2835+u2*(-1382.0/155925))))))
	}
	if u < 0 {
		t = -t
	}
	return t
}

// logf is the natural logarithm (called once per row, so no fast path is needed).
func logf[T Float](x T) T { return T(math.Log(float64(x))) }

// sqrtf is the square root.
func sqrtf[T Float](x T) T { return T(math.Sqrt(float64(x))) }

// exp32 is exp(x) in float32 by the polynomial the vector code uses: relative error below
// 2e-7, results clamped to normal numbers.
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
		x = -87.3
	}
	f := x*log2e + round
	n := f - round
	r := x - n*ln2hi - n*ln2lo // |r| <= ln2/2
	r2 := r * r
	p := (1 + r) + r2*((0.5+r*(1.0/6))+r2*((1.0/24+r*(1.0/120))+r2*(1.0/720+r*(1.0/5040))))
	scale := math.Float32frombits(uint32(int32(math.Float32bits(f))-0x4B400000+127) << 23)
	return p * scale
}
