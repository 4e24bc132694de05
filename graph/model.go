package graph

import (
	"fmt"

	"gochat/layers"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Mode says what a built graph computes.
type Mode int

const (
	// Train computes the loss with the chosen reduction and the gradient of every parameter.
	Train Mode = iota
	// Infer computes softcapped logits (B·T, vocab) and no gradients.
	Infer
	// Eval computes the per-token losses (B·T) and no gradients: the forward pass of
	// evaluation, without the (B·T, vocab) logits Infer holds.
	Eval
)

// Options fix the shapes and the work of a graph: Gorgonia graphs have static shapes, so
// each (Batch, SeqLen) needs its own.
type Options struct {
	Batch, SeqLen int
	Mode          Mode
	Reduction     layers.Reduction // Train only
	Engine        tensor.Engine    // nil: the engine of the process's BLAS (cpubackend.NewEngine)
	// Share, if set, is a model of the same Config whose parameter tensors this graph
	// uses instead of its own: what updates one (an optimizer) updates the other.
	Share *Model
}

// Model is nanochat's GPT compiled for one batch shape: parameters bound to tensors that
// persist across runs, input tensors that each run copies a batch into, and a TapeMachine.
type Model struct {
	Config Config
	Options
	g       *G.ExprGraph
	params  []*G.Node // in Config.Params order
	ids     *G.Node   // (B·T) token ids
	targets *G.Node   // (B·T) targets, Train only
	out     *G.Node   // loss (Train) or logits (Infer)
	vm      G.VM
}

// Build constructs the graph and its machine. Weights start at zero: Load them.
func Build(cfg Config, opt Options) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Batch <= 0 || opt.SeqLen <= 0 {
		return nil, fmt.Errorf("batch %d and sequence length %d must be positive", opt.Batch, opt.SeqLen)
	}
	if opt.SeqLen > cfg.RotaryLen() {
		return nil, fmt.Errorf("sequence length %d is beyond the rotary table of %d positions", opt.SeqLen, cfg.RotaryLen())
	}
	if opt.Engine == nil {
		var err error
		if opt.Engine, err = defaultEngine(); err != nil {
			return nil, err
		}
	}
	if opt.Share != nil && opt.Share.Config != cfg {
		return nil, fmt.Errorf("cannot share the weights of a model of another configuration")
	}
	m := &Model{Config: cfg, Options: opt, g: G.NewGraph()}
	n := opt.Batch * opt.SeqLen
	for i, p := range cfg.Params() {
		var v tensor.Tensor
		if opt.Share != nil {
			v = opt.Share.params[i].Value().(tensor.Tensor)
		} else {
			v = layers.NewTensor(opt.Engine, tensor.Float32, p.Shape[0], p.Shape[1])
		}
		m.params = append(m.params, G.NewMatrix(m.g, tensor.Float32, G.WithShape(p.Shape[0], p.Shape[1]), G.WithName(p.Name), G.WithValue(v)))
	}
	m.ids = intInput(m.g, opt.Engine, "idx", n)
	x, err := m.trunk()
	if err != nil {
		return nil, err
	}
	lmHead := m.params[len(m.params)-1]
	switch opt.Mode {
	case Infer:
		b := builder{}
		m.out = b.do(layers.Softcap(b.do(layers.Linear(x, lmHead)), LogitSoftcap))
		if b.err != nil {
			return nil, b.err
		}
	case Eval:
		m.targets = intInput(m.g, opt.Engine, "targets", n)
		if m.out, err = layers.LinearCrossEntropy(x, lmHead, m.targets, LogitSoftcap, layers.PerToken); err != nil {
			return nil, err
		}
	case Train:
		m.targets = intInput(m.g, opt.Engine, "targets", n)
		if m.out, err = layers.LinearCrossEntropy(x, lmHead, m.targets, LogitSoftcap, opt.Reduction); err != nil {
			return nil, err
		}
		loss := m.out
		if opt.Reduction == layers.PerToken {
			if loss, err = G.Sum(m.out); err != nil {
				return nil, err
			}
		}
		grads, err := G.Grad(loss, m.params...)
		if err != nil {
			return nil, fmt.Errorf("gradients: %w", err)
		}
		// The gradients are the values of these nodes, read after each run: keep them live
		// to the end of the program.
		if _, err := layers.Keep(append(grads, m.out)...); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown mode %d", opt.Mode)
	}
	m.vm, err = newMachine(m.g, G.WithEngine(opt.Engine))
	return m, err
}

// trunk builds the network up to lm_head: embedding, norm, blocks, final norm.
func (m *Model) trunk() (*G.Node, error) {
	c, B, T := m.Config, m.Batch, m.SeqLen
	table, err := layers.NewRotaryTable(c.RotaryLen(), c.HeadDim(), RotaryBase)
	if err != nil {
		return nil, err
	}
	p := m.params
	b := builder{}
	x := b.do(layers.Embedding(p[0], m.ids))
	x = b.do(layers.RMSNorm(x))
	shape := layers.AttnShape{Batch: B, Heads: c.NHead, KVHeads: c.NKVHead, HeadDim: c.HeadDim(), Tq: T, Tk: T}
	qk := c.NHead + c.NKVHead
	for i := 0; i < c.NLayer; i++ {
		q, k, v, proj, fc, mproj := p[1+6*i], p[2+6*i], p[3+6*i], p[4+6*i], p[5+6*i], p[6+6*i]
		// Attention: one product for q|k|v, rotary and QK norm on the q and k heads.
		h := b.do(layers.RMSNorm(x))
		qkv := b.do(layers.Linear(h, b.do(layers.ConcatRows(q, k, v))))
		qkv = b.do(layers.Rotary(qkv, layers.Rotation{Table: table, SeqLen: T, Heads: qk}))
		qkv = b.do(layers.HeadRMSNorm(qkv, c.HeadDim(), qk))
		y := b.do(layers.Attention(qkv, shape))
		x = b.do(layers.Add(x, b.do(layers.Linear(y, proj))))
		// MLP.
		h = b.do(layers.RMSNorm(x))
		h = b.do(layers.ReLU2(b.do(layers.Linear(h, fc))))
		x = b.do(layers.Add(x, b.do(layers.Linear(h, mproj))))
	}
	x = b.do(layers.RMSNorm(x))
	return x, b.err
}

// builder keeps the first error of a chain of node constructors.
type builder struct{ err error }

func (b *builder) do(n *G.Node, err error) *G.Node {
	if b.err == nil {
		b.err = err
	}
	return n
}

func intInput(g *G.ExprGraph, eng tensor.Engine, name string, n int) *G.Node {
	v := layers.NewTensor(eng, tensor.Int, n)
	return G.NewVector(g, tensor.Int, G.WithShape(n), G.WithName(name), G.WithValue(v))
}

// newMachine compiles the graph, turning a compiler panic into an error.
func newMachine(g *G.ExprGraph, opts ...G.VMOpt) (vm G.VM, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compiling the graph: %v", r)
		}
	}()
	return G.NewTapeMachine(g, opts...), nil
}
