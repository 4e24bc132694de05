// Package optimizers holds nanochat's optimisers over parameter values and gradients: Muon
// (momentum orthogonalised by Newton-Schulz) for the transformer's matrices, AdamW for the
// embedding and lm_head, the learning-rate and momentum schedules and global-norm clipping.
// It knows no model: train.Trainer combines them into nanochat's training step.
package optimizers

import (
	"math"

	"gochat/backend"
	"gochat/internal/parallel"
)

// Coefficients of the quintic Newton-Schulz iteration (Keller Jordan's Muon).
const (
	nsA, nsB, nsC = 3.4445, -4.7750, 2.0315
	// NSSteps is the number of iterations nanochat runs.
	NSSteps = 5
)

// nsWork holds the matrices of one Newton-Schulz shape (r ≤ c), reused across steps; in
// the engine's memory when it has one (Metal's products then run on them in place).
type nsWork struct {
	shape         [2]int
	x, next, a, b []float32
}

func newNSWork(e backend.Gemm, r, c int) *nsWork {
	return &nsWork{shape: [2]int{r, c}, x: Zeros(e, r*c), next: Zeros(e, r*c), a: Zeros(e, r*r), b: Zeros(e, r*r)}
}

// NewtonSchulz writes into out (rows×cols, row-major) the approximate orthogonalisation of
// g that nanochat's zeropower_via_newtonschulz5 computes: g is scaled to unit Frobenius
// norm (plus 1e-7), a tall matrix is transposed so that the iteration works on the wide
// orientation, and steps of X ← aX + (bA + cA²)X with A = XXᵀ follow, in float32, with
// Keller Jordan's quintic coefficients. It runs on e, whose memory out and g must be; the
// work may be queued there.
func NewtonSchulz(e backend.OptimizerKernels, out, g []float32, rows, cols, steps int) {
	e.NewtonSchulz([][]float32{out}, [][]float32{g}, rows, cols, steps, nsA, nsB, nsC)
}

// newtonSchulz is NewtonSchulz on the host, with coefficients (ca, cb, cc), its products on
// e and its matrices in w.
func newtonSchulz(e backend.Gemm, out, g []float32, rows, cols, steps int, ca, cb, cc float32, w *nsWork) {
	tall := rows > cols
	r, c := rows, cols
	if tall {
		r, c = cols, rows
	}
	x := w.x
	if tall {
		transpose(x, g, rows, cols)
	} else {
		copy(x, g)
	}
	inv := float32(1 / (math.Sqrt(sumSquares(x)) + 1e-7))
	parallel.For(len(x), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x[i] *= inv
		}
	})
	next, a, b := w.next, w.a, w.b
	for range steps {
		e.Sgemm(false, true, r, r, c, 1, x, c, x, c, 0, a, r) // A = X·Xᵀ
		for i, v := range a {
			b[i] = cb * v
		}
		e.Sgemm(false, false, r, r, r, cc, a, r, a, r, 1, b, r) // B = bA + cA·A
		parallel.For(len(x), 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				next[i] = ca * x[i]
			}
		})
		e.Sgemm(false, false, r, c, r, 1, b, r, x, c, 1, next, c) // X = aX + B·X
		x, next = next, x
	}
	if tall {
		transpose(out, x, r, c)
	} else {
		copy(out, x)
	}
	w.x, w.next = x, next
}

// transpose writes the transpose of src (rows×cols) into dst (cols×rows).
func transpose(dst, src []float32, rows, cols int) {
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			dst[j*rows+i] = src[i*cols+j]
		}
	}
}
