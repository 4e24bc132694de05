package layers

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// IgnoreIndex marks a target position that contributes no loss (PyTorch's ignore_index).
const IgnoreIndex = -1

// Reduction says how per-token losses combine, as PyTorch's loss_reduction does.
type Reduction int

const (
	// Mean averages over the targets that are not IgnoreIndex (0 when there are none).
	Mean Reduction = iota
	// Sum adds the per-token losses.
	Sum
	// PerToken returns every position's loss (0 at ignored positions): bits per byte needs it.
	PerToken
)

func (r Reduction) String() string { return [...]string{"mean", "sum", "none"}[r] }

// SoftcapCrossEntropy is nanochat's loss head: cross-entropy of softcapped logits
// z = cap·tanh(l/cap) (cap 0: no softcap) against int targets. When the graph
// differentiates it, the forward run also prepares the logits' gradient in the one
// logits-sized buffer the backward pass needs anyway; z itself is never stored.
func SoftcapCrossEntropy(logits, targets *G.Node, cap float64, r Reduction) (*G.Node, error) {
	if logits.Dims() != 2 || targets.Dims() != 1 || targets.Shape()[0] != logits.Shape()[0] {
		return nil, fmt.Errorf("cross-entropy: want logits (N, V) and targets (N), got %v and %v", logits.Shape(), targets.Shape())
	}
	if cap < 0 || r < Mean || r > PerToken {
		return nil, fmt.Errorf("cross-entropy: invalid cap %g or reduction %d", cap, r)
	}
	name := fmt.Sprintf("SoftcapXent{%g,%v}", cap, r)
	return G.ApplyOp(&xentOp{opInfo: opInfo{name: name, arity: 2}, cap: cap, reduction: r}, logits, targets)
}

// CrossEntropyForward writes each row's loss lse(z) − z[target] for softcapped logits
// z = cap·tanh(l/cap) (cap 0: z = l); ignored rows get loss 0. When grad is not nil it also
// writes there each row's gradient of its own loss with respect to its logits,
// (softmax(z) − onehot(target))·dz/dl, so that the backward pass only scales rows: one tanh
// and one exp per logit in all. It fails on a target outside [0, V) that is not IgnoreIndex.
func CrossEntropyForward[T Float](losses, logits []T, targets []int, vocab int, cap T, grad []T) error {
	if err := checkTargets(targets, vocab); err != nil {
		return err
	}
	parallelFor(len(targets), 4*vocab, func(lo, hi int) {
		z, dz := make([]T, vocab), make([]T, vocab)
		for i := lo; i < hi; i++ {
			if grad != nil {
				z = grad[i*vocab : (i+1)*vocab]
			}
			t := targets[i]
			if t == IgnoreIndex && grad != nil {
				losses[i] = 0
				clear(z)
				continue
			}
			m := softcapRow(z, dz, logits[i*vocab:(i+1)*vocab], cap)
			zt := z[max(t, 0)]
			var sum T
			for j, x := range z {
				e := expf(x - m)
				z[j] = e
				sum += e
			}
			losses[i] = 0
			if t != IgnoreIndex {
				losses[i] = m + logf(sum) - zt
			}
			if grad != nil {
				inv := 1 / sum
				for j := range z {
					z[j] *= inv * dz[j]
				}
				z[t] -= dz[t]
			}
		}
	})
	return nil
}

// softcapRow sets z = cap·tanh(l/cap) and dz = dz/dl, and returns max z.
func softcapRow[T Float](z, dz, l []T, cap T) T {
	m := T(math.Inf(-1))
	for j, x := range l {
		if cap == 0 {
			z[j], dz[j] = x, 1
		} else {
			th := tanhf(x / cap)
			z[j], dz[j] = cap*th, 1-th*th
		}
		m = max(m, z[j])
	}
	return m
}

// ScaleRows multiplies row i of x (rows of width elements) by g[i]: the backward pass of
// the cross-entropy, given the per-row gradients CrossEntropyForward prepared.
func ScaleRows[T Float](x, g []T, width int) {
	parallelFor(len(g), width, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := range x[i*width : (i+1)*width] {
				x[i*width+j] *= g[i]
			}
		}
	})
}

func checkTargets(targets []int, vocab int) error {
	for i, t := range targets {
		if (t < 0 && t != IgnoreIndex) || t >= vocab {
			return fmt.Errorf("target %d at position %d is outside the vocabulary of %d (or %d to ignore)", t, i, vocab, IgnoreIndex)
		}
	}
	return nil
}

// validCount is the number of targets that are not ignored.
func validCount(targets []int) int {
	n := 0
	for _, t := range targets {
		if t != IgnoreIndex {
			n++
		}
	}
	return n
}

// xentOp prepares, when it is differentiated, each row's loss gradient for its gradient op.
type xentOp struct {
	opInfo
	cap            float64
	reduction      Reduction
	differentiated bool // set by SymDiff: the forward then fills grad
	losses, grad   buffer
}

func (op *xentOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	out := hm.Type(a)
	if op.reduction == PerToken {
		out = G.TensorType{Dims: 1, Of: a}
	}
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: tensor.Int}, out)
}

func (op *xentOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if op.reduction == PerToken {
		return tensor.Shape{in[0].(tensor.Shape)[0]}, nil
	}
	return tensor.ScalarShape(), nil
}

func (op *xentOp) DiffWRT(int) []bool { return []bool{true, false} }

// xentInputs checks logits (N, V) and int targets (N).
func xentInputs(l, t G.Value) (*tensor.Dense, []int, error) {
	logits, err := dense("cross-entropy logits", l)
	if err != nil {
		return nil, nil, err
	}
	tt, ok := t.(*tensor.Dense)
	if !ok || tt.Dtype() != tensor.Int || !tt.Shape().Eq(tensor.Shape{logits.Shape()[0]}) {
		return nil, nil, fmt.Errorf("cross-entropy: want %d int targets, got %v", logits.Shape()[0], t)
	}
	return logits, tt.Ints(), nil
}

func (op *xentOp) Do(in ...G.Value) (G.Value, error) {
	logits, targets, err := xentInputs(in[0], in[1])
	if err != nil {
		return nil, err
	}
	n, v := logits.Shape()[0], logits.Shape()[1]
	dt, eng := logits.Dtype(), logits.Engine()
	losses := op.losses.get(dt, eng, n)
	var grad *tensor.Dense
	if op.differentiated {
		grad = op.grad.get(dt, eng, n, v)
	}
	switch dt {
	case tensor.Float32:
		err = CrossEntropyForward(floats[float32](losses), floats[float32](logits), targets, v, float32(op.cap), optionalFloats[float32](grad))
	case tensor.Float64:
		err = CrossEntropyForward(floats[float64](losses), floats[float64](logits), targets, v, op.cap, optionalFloats[float64](grad))
	}
	if err != nil {
		return nil, err
	}
	if op.reduction == PerToken {
		return losses, nil
	}
	total := sumFloats(losses)
	if op.reduction == Mean {
		total /= float64(max(validCount(targets), 1))
	}
	if dt == tensor.Float32 {
		return G.NewF32(float32(total)), nil
	}
	return G.NewF64(total), nil
}

func (op *xentOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	op.differentiated = true
	g := &xentGradOp{opInfo: opInfo{name: "Grad" + op.name, arity: 3}, fwd: op}
	d, err := G.ApplyOp(g, in[0], in[1], grad)
	return G.Nodes{d, nil}, err
}

// xentGradOp scales the row gradients its forward op prepared by each row's loss gradient,
// from (logits, targets, dloss); it returns the forward op's buffer.
type xentGradOp struct {
	opInfo
	fwd   *xentOp
	scale buffer
}

func (op *xentGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, g := G.TensorType{Dims: 2, Of: a}, hm.Type(a)
	if op.fwd.reduction == PerToken {
		g = G.TensorType{Dims: 1, Of: a}
	}
	return hm.NewFnType(m, G.TensorType{Dims: 1, Of: tensor.Int}, g, m)
}

func (op *xentGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op *xentGradOp) Do(in ...G.Value) (G.Value, error) {
	logits, targets, err := xentInputs(in[0], in[1])
	if err != nil {
		return nil, err
	}
	out := op.fwd.grad.t
	if out == nil || !out.Shape().Eq(logits.Shape()) || out.Dtype() != logits.Dtype() {
		return nil, fmt.Errorf("%v: the forward op has not run", op)
	}
	n, v := logits.Shape()[0], logits.Shape()[1]
	dt := logits.Dtype()
	scale := op.scale.get(dt, logits.Engine(), n)
	switch op.fwd.reduction {
	case PerToken:
		if scale, err = dense("cross-entropy loss gradient", in[2], n); err != nil {
			return nil, err
		}
	default:
		s, ok := in[2].(G.Scalar)
		if !ok {
			return nil, fmt.Errorf("%v: want a scalar loss gradient, got %T", op, in[2])
		}
		g := scalarFloat(s)
		if op.fwd.reduction == Mean {
			g /= float64(max(validCount(targets), 1))
		}
		for i := 0; i < n; i++ {
			scale.SetAt(castTo(dt, g), i)
		}
	}
	switch dt {
	case tensor.Float32:
		ScaleRows(floats[float32](out), floats[float32](scale), v)
	case tensor.Float64:
		ScaleRows(floats[float64](out), floats[float64](scale), v)
	}
	return out, nil
}

// scalarFloat reads a Gorgonia float scalar.
func scalarFloat(s G.Scalar) float64 {
	switch v := s.Data().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// castTo converts x to the Go type of dt (float32 or float64).
func castTo(dt tensor.Dtype, x float64) any {
	if dt == tensor.Float32 {
		return float32(x)
	}
	return x
}

// sumFloats adds a float tensor's elements in float64.
func sumFloats(t *tensor.Dense) float64 {
	var total float64
	switch d := t.Data().(type) {
	case []float32:
		for _, x := range d {
			total += float64(x)
		}
	case []float64:
		for _, x := range d {
			total += x
		}
	}
	return total
}
