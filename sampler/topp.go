package sampler

import (
	"fmt"
	"math"
	"slices"
)

// Nucleus sampling (top-p, Holtzman et al. 2019), which nanochat does not have: a token is
// drawn from the smallest set of the most likely tokens whose probabilities add up to at
// least TopP. That set is always the m most likely tokens for some m, so it is top-k
// sampling with k = m, and Sample draws from it.

// checkTopP refuses a TopP outside [0, 1].
func (s Settings) checkTopP() error {
	if !(s.TopP >= 0 && s.TopP <= 1) {
		return fmt.Errorf("sampler: top-p %g is outside [0, 1]", s.TopP)
	}
	return nil
}

// topK is the k that Sample draws among for these logits: TopK, narrowed to the nucleus
// of mass TopP when 0 < TopP < 1.
func (s Settings) topK(logits []float32) int {
	if s.Temperature == 0 || !(s.TopP > 0 && s.TopP < 1) {
		return s.TopK
	}
	return nucleus(logits, s.Temperature, s.TopK, s.TopP)
}

// nucleus returns how many of the most likely tokens (among the topK most likely; all
// when topK is 0) it takes for softmax(logits/temperature), restricted to them, to reach
// mass p; at least one.
func nucleus(logits []float32, temperature float64, topK int, p float64) int {
	candidates := topIndices(logits, topK)
	sorted := make([]float32, len(candidates)) // the values alone sort fast
	for k, i := range candidates {
		sorted[k] = logits[i]
	}
	slices.Sort(sorted)
	slices.Reverse(sorted) // the most likely first
	weights := make([]float64, len(sorted))
	var sum float64
	for k, x := range sorted {
		weights[k] = math.Exp((float64(x) - float64(sorted[0])) / temperature)
		sum += weights[k]
	}
	var mass float64
	for k, w := range weights {
		if mass += w; mass >= p*sum {
			return k + 1
		}
	}
	return len(sorted) // rounding left the sum short of p·sum
}
