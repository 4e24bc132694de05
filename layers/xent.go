package layers

import (
	"fmt"

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
// z = cap·tanh(l/cap) (cap 0: no softcap) against int targets. It never stores z: the
// forward keeps one log-sum-exp per row and the backward recomputes z from the logits.
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

// CrossEntropyForward writes each row's loss lse(z) − z[target] and log-sum-exp, for
// softcapped z (cap 0: z = l). Ignored rows get loss 0. It fails on a target outside
// [0, V) that is not IgnoreIndex.
func CrossEntropyForward[T Float](losses, lse, logits []T, targets []int, vocab int, cap T) error {
	if err := checkTargets(targets, vocab); err != nil {
		return err
	}
	parallelFor(len(targets), 2*vocab, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := logits[i*vocab : (i+1)*vocab]
			// tanh is increasing, so the largest z is the softcap of the largest logit.
			m := row[0]
			for _, l := range row[1:] {
				m = max(m, l)
			}
			m = softcap(m, cap)
			var sum T
			for _, l := range row {
				sum += expf(softcap(l, cap) - m)
			}
			lse[i] = m + logf(sum)
			losses[i] = 0
			if t := targets[i]; t != IgnoreIndex {
				losses[i] = lse[i] - softcap(row[t], cap)
			}
		}
	})
	return nil
}

// CrossEntropyBackward writes dl = g_i·(softmax(z) − onehot(target))·dz/dl for each row,
// where g_i is the gradient of row i's loss; ignored rows get 0.
func CrossEntropyBackward[T Float](dlogits, logits, lse []T, targets []int, g []T, vocab int, cap T) {
	parallelFor(len(targets), 2*vocab, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row, out := logits[i*vocab:(i+1)*vocab], dlogits[i*vocab:(i+1)*vocab]
			t := targets[i]
			if t == IgnoreIndex {
				clear(out)
				continue
			}
			for j, l := range row {
				if cap == 0 {
					out[j] = g[i] * expf(l-lse[i])
					continue
				}
				th := tanhf(l / cap)
				out[j] = g[i] * expf(cap*th-lse[i]) * (1 - th*th)
			}
			if cap == 0 {
				out[t] -= g[i]
			} else {
				th := tanhf(row[t] / cap)
				out[t] -= g[i] * (1 - th*th)
			}
		}
	})
}

func softcap[T Float](x, cap T) T {
	if cap == 0 {
		return x
	}
	return cap * tanhf(x/cap)
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

// xentOp keeps the log-sum-exps of its last forward run for its gradient op.
type xentOp struct {
	opInfo
	cap         float64
	reduction   Reduction
	losses, lse buffer
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

// inputs checks logits (N, V) and int targets (N).
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
	losses, lse := op.losses.get(dt, eng, n), op.lse.get(dt, eng, n)
	switch dt {
	case tensor.Float32:
		err = CrossEntropyForward(floats[float32](losses), floats[float32](lse), floats[float32](logits), targets, v, float32(op.cap))
	case tensor.Float64:
		err = CrossEntropyForward(floats[float64](losses), floats[float64](lse), floats[float64](logits), targets, v, op.cap)
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
	g := &xentGradOp{opInfo: opInfo{name: "Grad" + op.name, arity: 3}, fwd: op}
	d, err := G.ApplyOp(g, in[0], in[1], grad)
	return G.Nodes{d, nil}, err
}

// xentGradOp computes dlogits from (logits, targets, dloss).
type xentGradOp struct {
	opInfo
	fwd        *xentOp
	out, scale buffer
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
	lse := op.fwd.lse.t
	if lse == nil || lse.Dtype() != logits.Dtype() {
		return nil, fmt.Errorf("%v: the forward op has not run", op)
	}
	n, v := logits.Shape()[0], logits.Shape()[1]
	dt, eng := logits.Dtype(), logits.Engine()
	// Per-row loss gradients g_i from the reduction.
	scale := op.scale.get(dt, eng, n)
	switch op.fwd.reduction {
	case PerToken:
		gv, err := dense("cross-entropy loss gradient", in[2], n)
		if err != nil {
			return nil, err
		}
		scale = gv
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
	out := op.out.get(dt, eng, n, v)
	switch dt {
	case tensor.Float32:
		CrossEntropyBackward(floats[float32](out), floats[float32](logits), floats[float32](lse), targets, floats[float32](scale), v, float32(op.fwd.cap))
	case tensor.Float64:
		CrossEntropyBackward(floats[float64](out), floats[float64](logits), floats[float64](lse), targets, floats[float64](scale), v, op.fwd.cap)
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
