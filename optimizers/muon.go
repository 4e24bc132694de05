package optimizers

import (
	"fmt"
	"math"

	"gochat/backend"
)

// Param is one parameter an optimizer updates: its values (updated in place), its gradient
// and its shape in PyTorch's [out, in] layout.
type Param struct {
	Name        string
	Value, Grad []float32
	Rows, Cols  int
}

// Muon is nanochat's Muon for 2-D matrices: a momentum buffer updated by lerp, a Nesterov
// step, Newton-Schulz orthogonalisation, and an update scaled by √max(1, rows/cols). It
// updates several matrices at once: Newton-Schulz runs on all the matrices of a shape
// together (a few large calls of the engine instead of many small ones).
type Muon struct {
	engine   backend.Backend
	momentum map[string][]float32
}

// NewMuon returns a Muon that runs on e, its state in e's memory.
func NewMuon(e backend.Backend) *Muon {
	return &Muon{engine: e, momentum: map[string][]float32{}}
}

// Momentum returns the momentum buffer of parameter name, once it has been stepped.
func (m *Muon) Momentum(name string) ([]float32, bool) {
	b, ok := m.momentum[name]
	return b, ok
}

// Restore sets the momentum buffers, as Momentum gave them (in the optimizer's memory: see
// Zeros).
func (m *Muon) Restore(momentum map[string][]float32) { m.momentum = momentum }

// Step updates every parameter with learning rate lr and momentum mu (nesterov): the
// momentum of each, then Newton-Schulz on the matrices of each shape at once, then each
// update. The updates are made in the gradients' memory, which they overwrite: a step
// needs no memory beyond the momentum.
func (m *Muon) Step(params []Param, lr, mu float64) error {
	var shapes [][2]int
	groups := map[[2]int][]Param{}
	for _, p := range params {
		n := p.Rows * p.Cols
		if len(p.Value) != n || len(p.Grad) != n {
			return fmt.Errorf("muon: %s has %d values and %d gradients, want %d×%d", p.Name, len(p.Value), len(p.Grad), p.Rows, p.Cols)
		}
		if _, ok := m.momentum[p.Name]; !ok {
			m.momentum[p.Name] = Zeros(m.engine, n)
		}
		key := [2]int{p.Rows, p.Cols}
		if groups[key] == nil {
			shapes = append(shapes, key)
		}
		groups[key] = append(groups[key], p)
	}
	e := m.engine
	for _, key := range shapes {
		group := groups[key]
		upd := make([][]float32, len(group))
		for i, p := range group {
			upd[i] = p.Grad
			e.MuonMomentum(m.momentum[p.Name], p.Grad, upd[i], float32(mu))
		}
		e.NewtonSchulz(upd, upd, key[0], key[1], NSSteps, nsA, nsB, nsC)
		for i, p := range group {
			e.Axpy(p.Value, upd[i], -float32(updateScale(lr, p)))
		}
	}
	return e.Sync()
}

// updateScale is Muon's step size for p: lr·√max(1, rows/cols).
func updateScale(lr float64, p Param) float64 {
	return lr * math.Sqrt(math.Max(1, float64(p.Rows)/float64(p.Cols)))
}
