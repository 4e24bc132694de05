package benchmarks

import (
	"time"

	"gochat/backend"
	"gochat/internal/measure"
)

// GemmGFLOPs is the single-precision product rate of e in GFLOP/s at C = A·Bᵀ, A m×k and B
// n×k (how nanochat's linear layers multiply), operands in e's own memory: the best of
// repeated calls over at least duration, after a warm-up call.
func GemmGFLOPs(e backend.Backend, m, n, k int, duration time.Duration) float64 {
	return measure.GemmGFLOPs(e, true, m, n, k, duration)
}
