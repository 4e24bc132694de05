package optimizers

import (
	"math"

	"gochat/backend"
	"gochat/internal/parallel"
)

// Schedule is base_train's learning-rate schedule over NumIterations steps: a linear
// warmup over round(WarmupRatio·N) steps, a flat part, and a linear warmdown over the last
// round(WarmdownRatio·N) steps to FinalLRFrac.
type Schedule struct {
	NumIterations                           int
	WarmupRatio, WarmdownRatio, FinalLRFrac float64
}

// LRMultiplier is the factor on every group's initial learning rate at iteration it.
func (s Schedule) LRMultiplier(it int) float64 {
	n := float64(s.NumIterations)
	warmup, warmdown := math.Round(s.WarmupRatio*n), math.Round(s.WarmdownRatio*n)
	switch {
	case float64(it) < warmup:
		return float64(it+1) / warmup
	case float64(it) <= n-warmdown:
		return 1
	default:
		progress := (n - float64(it)) / warmdown
		return progress + (1-progress)*s.FinalLRFrac
	}
}

// MuonMomentum is base_train's momentum ramp: 0.85 to 0.95 over the first 300 steps.
func MuonMomentum(it int) float64 {
	frac := math.Min(float64(it)/300, 1)
	return (1-frac)*0.85 + frac*0.95
}

// Clip scales the gradients on e so that their global L2 norm is at most maxNorm, as
// torch.nn.utils.clip_grad_norm_ does (coefficient maxNorm/(norm + 1e-6), capped at 1), and
// returns the norm before clipping; maxNorm ≤ 0 only measures. It reports the failures of
// the work queued on e.
func Clip(e backend.Backend, grads [][]float32, maxNorm float64) (float64, error) {
	return ClipShared(e, grads, maxNorm, nil)
}

// ClipShared is Clip of gradients shared out between processes: grads are this process's
// share, and total adds up the shares' Σg² over the processes (nil: one process, no share
// elsewhere), so that every process clips by the global norm.
func ClipShared(e backend.Backend, grads [][]float32, maxNorm float64, total func(ss float64) (float64, error)) (float64, error) {
	ss, err := e.SumSquares(grads)
	if err != nil {
		return 0, err
	}
	if total != nil {
		if ss, err = total(ss); err != nil {
			return 0, err
		}
	}
	norm := math.Sqrt(ss)
	if coef := maxNorm / (norm + 1e-6); maxNorm > 0 && coef < 1 {
		for _, g := range grads {
			e.Scale(g, float32(coef))
		}
	}
	return norm, nil
}

// sumSquares is Σx² in float64, over fixed chunks of 4096 so that the result does not
// depend on the number of processors.
func sumSquares(x []float32) float64 {
	const chunk = 4096
	parts := make([]float64, (len(x)+chunk-1)/chunk)
	parallel.For(len(parts), chunk, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var s float64
			for _, v := range x[c*chunk : min((c+1)*chunk, len(x))] {
				s += float64(v) * float64(v)
			}
			parts[c] = s
		}
	})
	var s float64
	for _, p := range parts {
		s += p
	}
	return s
}
