package optimizers

import (
	"fmt"
	"math"

	"gochat/internal/parallel"
	"gochat/layers"
)

// Param is one parameter an optimizer updates: its values (updated in place), its gradient
// and its shape in PyTorch's [out, in] layout.
type Param struct {
	Name        string
	Value, Grad []float32
	Rows, Cols  int
}

// Muon is nanochat's Muon for 2-D matrices: a momentum buffer updated by lerp, a Nesterov
// step, Newton-Schulz orthogonalisation, and an update scaled by √max(1, rows/cols).
type Muon struct {
	engine   layers.Gemm
	momentum map[string][]float32
	work     map[[2]int]*nsWork
	update   []float32
}

// NewMuon returns a Muon whose Newton-Schulz products run on e.
func NewMuon(e layers.Gemm) *Muon {
	return &Muon{engine: e, momentum: map[string][]float32{}, work: map[[2]int]*nsWork{}}
}

// Step updates every parameter with learning rate lr and momentum mu (nesterov).
func (m *Muon) Step(params []Param, lr, mu float64) error {
	for _, p := range params {
		n := p.Rows * p.Cols
		if len(p.Value) != n || len(p.Grad) != n {
			return fmt.Errorf("muon: %s has %d values and %d gradients, want %d×%d", p.Name, len(p.Value), len(p.Grad), p.Rows, p.Cols)
		}
		buf, ok := m.momentum[p.Name]
		if !ok {
			buf = make([]float32, n)
			m.momentum[p.Name] = buf
		}
		if cap(m.update) < n {
			m.update = make([]float32, n)
		}
		g, upd := p.Grad, m.update[:n]
		keep, take := float32(mu), float32(1-mu)
		parallel.For(n, 4, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				buf[i] += take * (g[i] - buf[i])   // buf.lerp_(g, 1 − μ)
				upd[i] = g[i] + keep*(buf[i]-g[i]) // g.lerp_(buf, μ)
			}
		})
		key := [2]int{min(p.Rows, p.Cols), max(p.Rows, p.Cols)}
		w, ok := m.work[key]
		if !ok {
			w = newNSWork(key[0], key[1])
			m.work[key] = w
		}
		newtonSchulz(m.engine, upd, upd, p.Rows, p.Cols, NSSteps, w)
		step := float32(lr * math.Sqrt(math.Max(1, float64(p.Rows)/float64(p.Cols))))
		parallel.For(n, 2, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				p.Value[i] -= step * upd[i]
			}
		})
	}
	return nil
}
