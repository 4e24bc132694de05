package optimizers

import (
	"fmt"
	"math"
	"sync"

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
// step, Newton-Schulz orthogonalisation, and an update scaled by √max(1, rows/cols). It
// updates several matrices at once; their Newton-Schulz workspaces are pooled by shape.
type Muon struct {
	engine    layers.Gemm
	momentum  map[string][]float32
	mu        sync.Mutex
	free      map[[2]int][]*nsWork
	deviceUpd map[[2]int][][]float32 // the updates being orthogonalised, on a Device
}

// NewMuon returns a Muon whose Newton-Schulz products run on e.
func NewMuon(e layers.Gemm) *Muon {
	return &Muon{engine: e, momentum: map[string][]float32{}, free: map[[2]int][]*nsWork{}}
}

// Momentum returns the momentum buffer of parameter name, once it has been stepped.
func (m *Muon) Momentum(name string) ([]float32, bool) {
	b, ok := m.momentum[name]
	return b, ok
}

// Restore sets the momentum buffers, as Momentum gave them (in the optimizer's memory: see
// Zeros).
func (m *Muon) Restore(momentum map[string][]float32) { m.momentum = momentum }

// Step updates every parameter with learning rate lr and momentum mu (nesterov).
func (m *Muon) Step(params []Param, lr, mu float64) error {
	for _, p := range params {
		n := p.Rows * p.Cols
		if len(p.Value) != n || len(p.Grad) != n {
			return fmt.Errorf("muon: %s has %d values and %d gradients, want %d×%d", p.Name, len(p.Value), len(p.Grad), p.Rows, p.Cols)
		}
		if _, ok := m.momentum[p.Name]; !ok {
			m.momentum[p.Name] = Zeros(m.engine, n)
		}
	}
	if d, ok := m.engine.(Device); ok {
		return m.stepOn(d, params, lr, mu)
	}
	parallel.Each(len(params), parallel.Workers(), func(i, _ int) {
		m.update(params[i], m.momentum[params[i].Name], lr, mu)
	})
	return nil
}

// update steps one parameter.
func (m *Muon) update(p Param, buf []float32, lr, mu float64) {
	w := m.take(p.Rows, p.Cols)
	defer m.put(w)
	g, upd := p.Grad, w.upd
	keep, take := float32(mu), float32(1-mu)
	parallel.For(len(buf), 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			buf[i] += take * (g[i] - buf[i])   // buf.lerp_(g, 1 − μ)
			upd[i] = g[i] + keep*(buf[i]-g[i]) // g.lerp_(buf, μ)
		}
	})
	newtonSchulz(m.engine, upd, upd, p.Rows, p.Cols, NSSteps, w)
	step := float32(updateScale(lr, p))
	parallel.For(len(upd), 2, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p.Value[i] -= step * upd[i]
		}
	})
}

// stepOn is Step on a device: the momentum of each parameter, then Newton-Schulz on all the
// matrices of one shape at once (the device's batched products: a few large calls instead
// of many small ones), then each update.
func (m *Muon) stepOn(d Device, params []Param, lr, mu float64) error {
	var shapes [][2]int
	groups := map[[2]int][]Param{}
	for _, p := range params {
		key := [2]int{p.Rows, p.Cols}
		if groups[key] == nil {
			shapes = append(shapes, key)
		}
		groups[key] = append(groups[key], p)
	}
	for _, key := range shapes {
		group := groups[key]
		upd := m.updates(d, key, len(group))
		for i, p := range group {
			d.MuonMomentum(m.momentum[p.Name], p.Grad, upd[i], float32(mu))
		}
		d.NewtonSchulz(upd, upd, key[0], key[1], NSSteps, nsA, nsB, nsC)
		for i, p := range group {
			d.Axpy(p.Value, upd[i], -float32(updateScale(lr, p)))
		}
	}
	return d.Sync()
}

// updates returns count update buffers of a shape in the device's memory, kept across steps.
func (m *Muon) updates(d Device, shape [2]int, count int) [][]float32 {
	if m.deviceUpd == nil {
		m.deviceUpd = map[[2]int][][]float32{}
	}
	for len(m.deviceUpd[shape]) < count {
		m.deviceUpd[shape] = append(m.deviceUpd[shape], Zeros(d, shape[0]*shape[1]))
	}
	return m.deviceUpd[shape][:count]
}

// updateScale is Muon's step size for p: lr·√max(1, rows/cols).
func updateScale(lr float64, p Param) float64 {
	return lr * math.Sqrt(math.Max(1, float64(p.Rows)/float64(p.Cols)))
}

// take returns a workspace for a rows×cols matrix from the pool, or a new one.
func (m *Muon) take(rows, cols int) *nsWork {
	key := [2]int{min(rows, cols), max(rows, cols)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ws := m.free[key]; len(ws) > 0 {
		m.free[key] = ws[:len(ws)-1]
		return ws[len(ws)-1]
	}
	return newNSWork(m.engine, key[0], key[1])
}

func (m *Muon) put(w *nsWork) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.free[w.shape] = append(m.free[w.shape], w)
}
