package optimizers

import (
	"math"
	"sync"

	"gochat/backend"
	"gochat/internal/parallel"
)

// HostSteps is the CPU's implementation of the optimizers' kernels (backend.OptimizerKernels),
// with the matrix products of the Gemm it holds; Newton-Schulz keeps its workspaces, in that
// Gemm's memory when it is a backend.Memory. The CPU engine (cpubackend) is made of it.
type HostSteps struct {
	backend.Gemm
	work *workspaces
}

// workspaces pools Newton-Schulz's matrices by shape.
type workspaces struct {
	mu   sync.Mutex
	free map[[2]int][]*nsWork
}

// NewHostSteps returns the optimizers' kernels over g.
func NewHostSteps(g backend.Gemm) HostSteps {
	return HostSteps{Gemm: g, work: &workspaces{free: map[[2]int][]*nsWork{}}}
}

// MuonMomentum sets buf ← lerp(buf, g, 1−mu) and then upd ← lerp(g, buf, mu).
func (h HostSteps) MuonMomentum(buf, g, upd []float32, mu float32) {
	take := 1 - mu
	parallel.For(len(buf), 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			buf[i] += take * (g[i] - buf[i])
			upd[i] = g[i] + mu*(buf[i]-g[i])
		}
	})
}

// NewtonSchulz orthogonalises the matrices on as many goroutines as are idle.
func (h HostSteps) NewtonSchulz(out, g [][]float32, rows, cols, steps int, a, b, c float32) {
	parallel.Each(len(g), parallel.Workers(), func(i, _ int) {
		w := h.take(rows, cols)
		defer h.put(w)
		newtonSchulz(h.Gemm, out[i], g[i], rows, cols, steps, a, b, c, w)
	})
}

// AdamW updates p, m and v for gradient g.
func (h HostSteps) AdamW(p, g, m, v []float32, decay, lerp, beta2, step, invBC2, eps float32) {
	parallel.For(len(g), 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			m[i] += lerp * (g[i] - m[i])
			v[i] = beta2*v[i] + (1-beta2)*g[i]*g[i]
			p[i] = p[i]*decay - step*m[i]/(float32(math.Sqrt(float64(v[i])))*invBC2+eps)
		}
	})
}

// Axpy sets y ← y + a·x.
func (h HostSteps) Axpy(y, x []float32, a float32) {
	parallel.For(len(y), 2, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] += a * x[i]
		}
	})
}

// SumSquares returns Σx² over all of xs, in float64, the same on any number of processors.
func (h HostSteps) SumSquares(xs [][]float32) (float64, error) {
	var ss float64
	for _, x := range xs {
		ss += sumSquares(x)
	}
	return ss, nil
}

// NewtonSchulzWorkspace is the memory, in bytes, of the workspaces NewtonSchulz keeps for
// groups, one call per group: per orientation-free shape, one for each matrix of the call
// that orthogonalises the most at once.
func (h HostSteps) NewtonSchulzWorkspace(groups []backend.MatrixGroup) uint64 {
	most := map[[2]int]int{}
	for _, g := range groups {
		key := [2]int{min(g.Rows, g.Cols), max(g.Rows, g.Cols)}
		most[key] = max(most[key], min(g.Count, parallel.Workers()))
	}
	var bytes uint64
	for key, n := range most {
		r, c := key[0], key[1]
		bytes += uint64(n) * uint64(2*r*c+2*r*r) * 4
	}
	return bytes
}

// take returns a workspace for a rows×cols matrix from the pool, or a new one.
func (h HostSteps) take(rows, cols int) *nsWork {
	key := [2]int{min(rows, cols), max(rows, cols)}
	h.work.mu.Lock()
	defer h.work.mu.Unlock()
	if ws := h.work.free[key]; len(ws) > 0 {
		h.work.free[key] = ws[:len(ws)-1]
		return ws[len(ws)-1]
	}
	return newNSWork(h.Gemm, key[0], key[1])
}

func (h HostSteps) put(w *nsWork) {
	h.work.mu.Lock()
	defer h.work.mu.Unlock()
	h.work.free[w.shape] = append(h.work.free[w.shape], w)
}
