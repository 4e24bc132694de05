// Package measure holds what a run measures about the machine it runs on: the rate of its
// matrix products, the peak that MFU is a share of, and the process's peak memory. Training
// and the benchmarks share it.
package measure

import (
	"gochat/backend"
	"time"

	"gorgonia.org/tensor"
)

// GemmGFLOPs measures C = A·op(B) on e for A m×k and op(B) k×n (B stored n×k when transB),
// operands in e's memory: the best rate of repeated calls over at least the given duration,
// after one warm-up call. The best, not the mean, is what the engine can do when nothing
// else runs.
func GemmGFLOPs(e backend.Gemm, transB bool, m, n, k int, duration time.Duration) float64 {
	a, b, c := Floats(e, m*k), Floats(e, k*n), Floats(e, m*n)
	fill := func(x []float32, period int) {
		h := make([]float32, len(x))
		for i := range h {
			h[i] = float32(i%period - period/2)
		}
		backend.Write(e, x, h) // a failure is the product's, reported by its engine
	}
	fill(a, 7)
	fill(b, 5)
	ldb := n
	if transB {
		ldb = k
	}
	product := func() {
		e.Sgemm(false, transB, m, n, k, 1, a, k, b, ldb, 0, c, n)
		Wait(e)
	}
	product()
	best := time.Duration(1 << 62)
	for start := time.Now(); time.Since(start) < duration; {
		t := time.Now()
		product()
		best = min(best, time.Since(t))
	}
	return 2 * float64(m) * float64(n) * float64(k) / best.Seconds() / 1e9
}

// Floats returns n zeroed floats in e's memory: a device's when e is one.
func Floats(e backend.Gemm, n int) []float32 {
	if d, ok := e.(backend.Memory); ok {
		return d.Make(tensor.Float32, n).([]float32)
	}
	return make([]float32, n)
}

// Wait returns when e has done the work queued on it.
func Wait(e backend.Gemm) {
	if d, ok := e.(backend.Memory); ok {
		d.Sync()
	}
}
