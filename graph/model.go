package graph

import (
	"fmt"

	"gochat/backend"
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
	Engine        backend.Backend  // nil: the process's engine (backend.Default)
	// Share, if set, is a model of the same Config whose parameter tensors this graph
	// uses instead of its own: what updates one (an optimizer) updates the other.
	Share *Model
	// ShareMemory, with Share, puts this graph's planned values in Share's memory when it
	// is large enough. The two graphs must then run one at a time, and each run overwrites
	// the other's results: read a training graph's gradients before an evaluation runs.
	ShareMemory bool
	// Recompute, for a Train graph, trades compute for memory (program.go).
	Recompute Recompute
}

// Model is nanochat's GPT compiled for one batch shape: parameters bound to tensors that
// persist across runs, input tensors that each run copies a batch into, and the program
// that runs the graph on planned memory.
type Model struct {
	Config Config
	Options
	g           *G.ExprGraph
	params      []*G.Node    // in Config.Params order
	ids         *G.Node      // (B·T) token ids
	targets     *G.Node      // (B·T) targets, Train only
	weights     *G.Node      // (B·T) weights of the per-token losses, PerToken Train only
	out         *G.Node      // loss (Train) or logits (Infer)
	output      []float32    // the last run's output where the host reads it, when it is a tensor
	lossWeights []float32    // the host's copy of the weights' values
	loss        *G.Node      // what a Train graph differentiates
	blocks      []blockNodes // the transformer blocks' nodes
	prog        *program
}

// blockNodes are the nodes one transformer block adds to the graph, and its output.
type blockNodes struct {
	nodes []*G.Node
	out   *G.Node
}

// Build constructs the graph and its program, on memory planned and allocated on the
// engine. Weights start at zero: Load them.
func Build(cfg Config, opt Options) (*Model, error) { return build(cfg, opt, true) }

// Plan is the memory a graph of cfg and opt would take, planned without building its
// tensors: nothing is allocated.
func Plan(cfg Config, opt Options) (Memory, error) {
	m, err := build(cfg, opt, false)
	if err != nil {
		return Memory{}, err
	}
	return m.Memory(), nil
}

// Memory is the graph's planned memory.
func (m *Model) Memory() Memory { return m.prog.memory }

func build(cfg Config, opt Options, alloc bool) (*Model, error) {
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
	var weights int64
	for i, p := range cfg.Params() {
		opts := []G.NodeConsOpt{G.WithShape(p.Shape[0], p.Shape[1]), G.WithName(p.Name)}
		switch {
		case opt.Share != nil:
			opts = append(opts, G.WithValue(opt.Share.params[i].Value()))
		case alloc:
			opts = append(opts, G.WithValue(layers.NewTensor(opt.Engine, tensor.Float32, p.Shape[0], p.Shape[1])))
		}
		if opt.Share == nil {
			weights += int64(p.Shape[0]*p.Shape[1]) * 4
		}
		m.params = append(m.params, G.NewMatrix(m.g, tensor.Float32, opts...))
	}
	m.ids = intInput(m.g, opt.Engine, "idx", n, alloc)
	x, err := m.trunk()
	if err != nil {
		return nil, err
	}
	lmHead := m.params[len(m.params)-1]
	results := []*G.Node{}
	switch opt.Mode {
	case Infer:
		b := builder{}
		m.out = b.do(layers.Softcap(b.do(layers.Linear(x, lmHead)), LogitSoftcap))
		if b.err != nil {
			return nil, b.err
		}
	case Eval:
		m.targets = intInput(m.g, opt.Engine, "targets", n, alloc)
		if m.out, err = layers.LinearCrossEntropy(x, lmHead, m.targets, LogitSoftcap, layers.PerToken); err != nil {
			return nil, err
		}
	case Train:
		m.targets = intInput(m.g, opt.Engine, "targets", n, alloc)
		if opt.Reduction == layers.PerToken { // Σ_i w_i·loss_i, the weights 1 until SetLossWeights
			wopts := []G.NodeConsOpt{G.WithShape(n), G.WithName("loss_weights")}
			if alloc {
				wopts = append(wopts, G.WithValue(layers.NewTensor(opt.Engine, tensor.Float32, n)))
			}
			m.weights = G.NewVector(m.g, tensor.Float32, wopts...)
			m.out, err = layers.LinearCrossEntropyWeighted(x, lmHead, m.targets, m.weights, LogitSoftcap)
		} else {
			m.out, err = layers.LinearCrossEntropy(x, lmHead, m.targets, LogitSoftcap, opt.Reduction)
		}
		if err != nil {
			return nil, err
		}
		if m.weights != nil && alloc {
			if err := m.SetLossWeights(nil); err != nil {
				return nil, err
			}
		}
		m.loss = m.out
		grads, err := G.Grad(m.loss, m.params...)
		if err != nil {
			return nil, fmt.Errorf("gradients: %w", err)
		}
		results = grads
	default:
		return nil, fmt.Errorf("unknown mode %d", opt.Mode)
	}
	if m.prog, err = m.compile(append(results, m.out), alloc); err != nil {
		return nil, err
	}
	m.prog.memory.Weights = weights
	return m, nil
}

// trunk builds the network up to lm_head (forward.go) as nodes of the graph.
func (m *Model) trunk() (*G.Node, error) {
	c := m.Config
	table, err := backend.NewRotaryTable(c.RotaryLen(), c.HeadDim(), RotaryBase)
	if err != nil {
		return nil, err
	}
	o := &nodeOps{m: m, table: table}
	x := trunk[*G.Node](o, c.NLayer)
	return x, o.err
}

// nodeOps are the forward pass's operations as nodes of a Model's graph; the first error
// of a constructor is kept and the rest of the chain builds nothing.
type nodeOps struct {
	builder
	m     *Model
	table *backend.RotaryTable
}

func (o *nodeOps) embed() *G.Node         { return o.do(layers.Embedding(o.m.params[0], o.m.ids)) }
func (o *nodeOps) norm(x *G.Node) *G.Node { return o.do(layers.RMSNorm(x)) }
func (o *nodeOps) add(a, b *G.Node) *G.Node {
	return o.do(layers.Add(a, b))
}
func (o *nodeOps) relu2(x *G.Node) *G.Node { return o.do(layers.ReLU2(x)) }

// block builds the block's nodes and records them.
func (o *nodeOps) block(_ int, x *G.Node, body func(*G.Node) *G.Node) *G.Node {
	before := len(o.m.g.AllNodes())
	out := body(x)
	o.m.blocks = append(o.m.blocks, blockNodes{nodes: o.m.g.AllNodes()[before:], out: out})
	return out
}

// linear multiplies by a block matrix; q, k and v are the rows of one.
func (o *nodeOps) linear(x *G.Node, w matrix) *G.Node {
	p := o.m.params[1+6*w.layer:]
	switch w.which {
	case qkvMatrix:
		return o.do(layers.Linear(x, o.do(layers.ConcatRows(p[0], p[1], p[2]))))
	case projMatrix:
		return o.do(layers.Linear(x, p[3]))
	case fcMatrix:
		return o.do(layers.Linear(x, p[4]))
	}
	return o.do(layers.Linear(x, p[5]))
}

func (o *nodeOps) rotary(qkv *G.Node) *G.Node {
	c := o.m.Config
	return o.do(layers.Rotary(qkv, backend.Rotation{Table: o.table, SeqLen: o.m.SeqLen, Heads: c.NHead + c.NKVHead}))
}

func (o *nodeOps) qkNorm(qkv *G.Node) *G.Node {
	c := o.m.Config
	return o.do(layers.HeadRMSNorm(qkv, c.HeadDim(), c.NHead+c.NKVHead))
}

func (o *nodeOps) attention(_ int, qkv *G.Node) *G.Node {
	c, T := o.m.Config, o.m.SeqLen
	return o.do(layers.Attention(qkv, backend.AttnShape{Batch: o.m.Batch, Heads: c.NHead, KVHeads: c.NKVHead, HeadDim: c.HeadDim(), Tq: T, Tk: T}))
}

// builder keeps the first error of a chain of node constructors.
type builder struct{ err error }

func (b *builder) do(n *G.Node, err error) *G.Node {
	if b.err == nil {
		b.err = err
	}
	return n
}

// intInput is an input of n token ids, with a tensor of eng when alloc is set.
func intInput(g *G.ExprGraph, eng tensor.Engine, name string, n int, alloc bool) *G.Node {
	opts := []G.NodeConsOpt{G.WithShape(n), G.WithName(name)}
	if alloc {
		opts = append(opts, G.WithValue(layers.NewTensor(eng, tensor.Int, n)))
	}
	return G.NewVector(g, tensor.Int, opts...)
}
