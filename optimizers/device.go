package optimizers

import (
	"gochat/layers"

	"gorgonia.org/tensor"
)

// Device is an engine that also runs the optimizers' work on its accelerator: the
// elementwise updates, Newton-Schulz and the gradient norm, over memory from its Make, so
// that weights, gradients and optimizer state never leave it. Like the layers' kernels these
// are queued; Muon, AdamW and the Trainer end their steps with a Sync.
type Device interface {
	layers.Device
	// MuonMomentum sets buf ← lerp(buf, g, 1−mu) and then upd ← lerp(g, buf, mu).
	MuonMomentum(buf, g, upd []float32, mu float32)
	// NewtonSchulz writes into each out[i] (rows×cols) what NewtonSchulz computes for g[i]
	// with the given coefficients, all the matrices at once; out[i] may be g[i].
	NewtonSchulz(out, g [][]float32, rows, cols, steps int, a, b, c float32)
	// AdamW updates p, m and v for gradient g as AdamW.Step does: m ← m + lerp·(g − m),
	// v ← beta2·v + (1 − beta2)·g², p ← p·decay − step·m / (√v·invBC2 + eps).
	AdamW(p, g, m, v []float32, decay, lerp, beta2, step, invBC2, eps float32)
	// Axpy sets y ← y + a·x.
	Axpy(y, x []float32, a float32)
	// SumSquares waits for the queued work and returns Σx² over all of xs, in float64.
	SumSquares(xs [][]float32) (float64, error)
}

// Zeros returns n zeroed floats: in e's memory when e is a layers.Memory, where the
// optimizers' state and a trainer's sums of gradients must live.
func Zeros(e any, n int) []float32 {
	if d, ok := e.(layers.Memory); ok {
		return d.Make(tensor.Float32, n).([]float32)
	}
	return make([]float32, n)
}
