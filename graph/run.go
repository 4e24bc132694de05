package graph

import (
	"fmt"

	"gochat/backend"
	"gochat/layers"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// defaultEngine is the process's engine (backend.Default: GOCHAT_ENGINE, else the CPU).
func defaultEngine() (backend.Backend, error) { return backend.Default() }

// Load copies weights, in host memory, into the parameter tensors.
func (m *Model) Load(w Weights) error {
	if err := m.Config.Check(w); err != nil {
		return err
	}
	for i, p := range m.Config.Params() {
		if err := backend.Write(m.Engine, m.params[i].Value().Data().([]float32), w[p.Name]); err != nil {
			return fmt.Errorf("loading %s: %w", p.Name, err)
		}
	}
	return nil
}

// Weights returns the parameter tensors' data, in the engine's memory (not copies: an
// optimizer updates them in place); HostWeights is what the host may read.
func (m *Model) Weights() Weights {
	w := Weights{}
	for i, p := range m.Config.Params() {
		w[p.Name] = m.params[i].Value().Data().([]float32)
	}
	return w
}

// HostWeights returns the parameters where the host may read them (Weights.OnHost).
func (m *Model) HostWeights() (Weights, error) { return m.Weights().OnHost(m.Engine) }

// Grads returns each parameter's gradient after a Train run. Each run overwrites them (the
// trainer adds up micro-batches itself); the buffers belong to the graph and may be
// changed in place, as an optimizer's clipping does.
func (m *Model) Grads() (Weights, error) {
	if m.Mode != Train {
		return nil, fmt.Errorf("an inference graph has no gradients")
	}
	w := Weights{}
	for i, p := range m.Config.Params() {
		g, err := m.params[i].Grad()
		if err != nil {
			return nil, fmt.Errorf("gradient of %s: %w", p.Name, err)
		}
		w[p.Name] = g.Data().([]float32)
	}
	return w, nil
}

// Run computes the graph on one batch: ids and targets hold Batch·SeqLen values, row-major
// (targets are ignored by an inference graph and may be nil). Ids must lie in
// [0, vocab_size); targets too, or be -1 to be ignored. On a backend.Memory engine, Run
// returns once its work has finished.
func (m *Model) Run(ids, targets []int) error {
	n := m.Batch * m.SeqLen
	if len(ids) != n {
		return fmt.Errorf("got %d token ids, want batch %d × sequence %d = %d", len(ids), m.Batch, m.SeqLen, n)
	}
	if err := layers.CheckIDs("token id", ids, m.Config.VocabSize, false); err != nil {
		return err
	}
	if err := backend.Write(m.Engine, m.ids.Value().Data().([]int), ids); err != nil {
		return err
	}
	if m.Mode != Infer {
		if len(targets) != n {
			return fmt.Errorf("got %d targets, want %d", len(targets), n)
		}
		if err := layers.CheckIDs("target", targets, m.Config.VocabSize, true); err != nil {
			return err
		}
		if err := backend.Write(m.Engine, m.targets.Value().Data().([]int), targets); err != nil {
			return err
		}
	}
	if err := m.prog.run(); err != nil {
		return err
	}
	m.output = nil
	if t, ok := m.out.Value().(tensor.Tensor); ok {
		var err error
		m.output, err = backend.Readable(m.Engine, t.Data().([]float32))
		return err
	}
	return m.Engine.Sync()
}

// SetLossWeights sets the weight of each position's loss in a PerToken Train graph, whose
// loss (what its gradients differentiate) is Σ_i w_i·loss_i: RL's advantages. nil sets
// them all to 1, where they start.
func (m *Model) SetLossWeights(w []float32) error {
	if m.weights == nil {
		return fmt.Errorf("loss weights: only a per-token training graph has them")
	}
	n := m.Batch * m.SeqLen
	switch {
	case w == nil:
		w = make([]float32, n)
		for i := range w {
			w[i] = 1
		}
	case len(w) != n:
		return fmt.Errorf("loss weights: got %d, want %d", len(w), n)
	}
	return backend.Write(m.Engine, m.weights.Value().Data().([]float32), w)
}

// Loss is the last Train run's loss: mean or sum by the reduction, or the weighted sum of
// the per-token losses (SetLossWeights); of an Eval run, the sum of its per-token losses.
func (m *Model) Loss() float64 {
	switch v := m.out.Value().(type) {
	case *G.F32:
		return float64(*v)
	case tensor.Tensor:
		var s float64
		for _, x := range m.output {
			s += float64(x)
		}
		return s
	}
	return 0
}

// Shape is the rows and the tokens of each that a run takes.
func (m *Model) Shape() (rows, seqLen int) { return m.Batch, m.SeqLen }

// TokenLosses runs an Eval graph on a batch and returns the loss of each position (Output:
// overwritten by the next run).
func (m *Model) TokenLosses(ids, targets []int) ([]float32, error) {
	if m.Mode != Eval {
		return nil, fmt.Errorf("graph: token losses need an Eval graph")
	}
	if err := m.Run(ids, targets); err != nil {
		return nil, err
	}
	return m.Output(), nil
}

// Output is the last run's output, in host memory: logits (B·T·vocab) for Infer, per-token
// losses for Eval; nil for Train. It is overwritten by the next run.
func (m *Model) Output() []float32 { return m.output }
