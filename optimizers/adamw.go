package optimizers

import (
	"fmt"
	"math"

	"gochat/backend"
)

// AdamW is PyTorch's AdamW with nanochat's settings: betas (0.8, 0.95), eps 1e-10, bias
// correction, decoupled weight decay.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	steps                          int
	expAvg, expAvgSq               map[string][]float32
	engine                         backend.Backend // where the moments live and the updates run
}

// NewAdamW returns nanochat's AdamW with the given weight decay, running on e.
func NewAdamW(weightDecay float64, e backend.Backend) *AdamW {
	return &AdamW{Beta1: 0.8, Beta2: 0.95, Eps: 1e-10, WeightDecay: weightDecay, engine: e,
		expAvg: map[string][]float32{}, expAvgSq: map[string][]float32{}}
}

// Steps is the number of steps taken, which the bias correction counts.
func (a *AdamW) Steps() int { return a.steps }

// Moments returns the first and second moments of parameter name, once it has been stepped.
func (a *AdamW) Moments(name string) (m, v []float32, ok bool) {
	m, ok = a.expAvg[name]
	return m, a.expAvgSq[name], ok
}

// Restore sets the step count and the moments, as Steps and Moments gave them (in the
// optimizer's memory: see Zeros).
func (a *AdamW) Restore(steps int, m, v map[string][]float32) error {
	for name := range m {
		if _, ok := v[name]; !ok {
			return fmt.Errorf("adamw: %s has a first moment but no second", name)
		}
	}
	a.steps, a.expAvg, a.expAvgSq = steps, m, v
	return nil
}

// Step updates every parameter with its own learning rate lrs[i], as PyTorch does:
// p ← p·(1 − lr·wd); m ← lerp(m, g, 1−β1); v ← β2·v + (1−β2)·g²;
// p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps).
func (a *AdamW) Step(params []Param, lrs []float64) error {
	a.steps++
	bc1 := 1 - math.Pow(a.Beta1, float64(a.steps))
	bc2 := math.Sqrt(1 - math.Pow(a.Beta2, float64(a.steps)))
	for k, p := range params {
		if len(p.Value) != len(p.Grad) {
			return fmt.Errorf("adamw: %s has %d values and %d gradients", p.Name, len(p.Value), len(p.Grad))
		}
		m, ok := a.expAvg[p.Name]
		if !ok {
			m = Zeros(a.engine, len(p.Value))
			a.expAvg[p.Name], a.expAvgSq[p.Name] = m, Zeros(a.engine, len(p.Value))
		}
		lr := lrs[k]
		a.engine.AdamW(p.Value, p.Grad, m, a.expAvgSq[p.Name], float32(1-lr*a.WeightDecay), float32(1-a.Beta1), float32(a.Beta2),
			float32(lr/bc1), float32(1/bc2), float32(a.Eps))
	}
	return a.engine.Sync()
}
