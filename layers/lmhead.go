package layers

import (
	"fmt"
	"gochat/backend"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LinearCrossEntropy is nanochat's training head in one op: lm_head (x·Wᵀ for x (N, C) and
// W (V, C)), the logit softcap, and the cross-entropy against int targets with the given
// reduction. It works through the rows in chunks, so the (N, V) logits never exist whole:
// at d12 with 2048 tokens and a 65,536 vocabulary that is 512 MiB not held, twice (logits
// and their gradient). When the graph differentiates it, the forward pass also computes
// the gradients for a unit loss gradient, and the gradient ops only scale them.
func LinearCrossEntropy(x, w, targets *G.Node, cap float64, r Reduction) (*G.Node, error) {
	if err := checkLMHead(x, w, targets, cap); err != nil {
		return nil, err
	}
	if r < Mean || r > PerToken {
		return nil, fmt.Errorf("lm head: invalid reduction %d (weighted losses are LinearCrossEntropyWeighted's)", r)
	}
	name := fmt.Sprintf("LinearCrossEntropy{%g,%v}", cap, r)
	return G.ApplyOp(&lmHeadOp{opInfo: opInfo{name: name, arity: 3}, cap: cap, reduction: r}, x, w, targets)
}

// LinearCrossEntropyWeighted is LinearCrossEntropy whose loss is Σ_i weights_i·loss_i for
// N float weights (RL's advantages): each row's gradient is scaled by its weight in the
// forward pass, as the mean's are by 1/count.
func LinearCrossEntropyWeighted(x, w, targets, weights *G.Node, cap float64) (*G.Node, error) {
	if weights.Dims() != 1 || targets.Dims() != 1 || weights.Shape()[0] != targets.Shape()[0] {
		return nil, fmt.Errorf("lm head: want one weight a target, got %v and %v", weights.Shape(), targets.Shape())
	}
	if err := checkLMHead(x, w, targets, cap); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("LinearCrossEntropy{%g,%v}", cap, Weighted)
	return G.ApplyOp(&lmHeadOp{opInfo: opInfo{name: name, arity: 4}, cap: cap, reduction: Weighted}, x, w, targets, weights)
}

// checkLMHead checks the shapes of the lm head's inputs and the softcap.
func checkLMHead(x, w, targets *G.Node, cap float64) error {
	if x.Dims() != 2 || w.Dims() != 2 || targets.Dims() != 1 || x.Shape()[1] != w.Shape()[1] || targets.Shape()[0] != x.Shape()[0] {
		return fmt.Errorf("lm head: want x (N, C), W (V, C) and targets (N), got %v, %v and %v", x.Shape(), w.Shape(), targets.Shape())
	}
	if cap < 0 {
		return fmt.Errorf("lm head: invalid cap %g", cap)
	}
	return nil
}

// lmHeadRows is how many rows of logits exist at once: about 8 Mi values (32 MiB) in host
// memory, 16 times that on an engine with a device's memory, where larger products run
// nearer its peak.
func lmHeadRows(e backend.Gemm, vocab int) int {
	values := 8 << 20
	if _, ok := e.(backend.DeviceMemory); ok {
		values *= 16
	}
	return max(1, values/vocab)
}

// LinearCrossEntropyPass computes, chunk by chunk, the logits x·Wᵀ, their softcap and
// cross-entropy: losses receives every row's loss. When scale is not nil, dx and dw
// receive the gradients of Σ_i scale_i·loss_i; dw is accumulated into, so clear it first.
// scratch holds lmHeadRows(e, vocab)·vocab values. Every slice must be e's memory, the
// targets checked (CheckIDs); the work may be queued there.
func LinearCrossEntropyPass[T Float](e backend.Gemm, x, w []T, targets []int, width, vocab int, cap T, losses, scale, dx, dw, scratch []T) {
	n, rows := len(targets), lmHeadRows(e, vocab)
	for r0 := 0; r0 < n; r0 += rows {
		r := min(rows, n-r0)
		logits, xs := scratch[:r*vocab], x[r0*width:]
		gemm(e, false, true, r, vocab, width, 1, xs, width, w, width, 0, logits, vocab)
		var grad []T
		if scale != nil {
			grad = logits // the gradient overwrites the logits row by row
		}
		var rowScale []T
		if scale != nil {
			rowScale = scale[r0 : r0+r]
		}
		kernelsFor[T](e).CrossEntropyForward(losses[r0:r0+r], logits, targets[r0:r0+r], vocab, cap, grad, rowScale)
		if scale == nil {
			continue
		}
		gemm(e, false, false, r, width, vocab, 1, grad, vocab, w, width, 0, dx[r0*width:], width)
		gemm(e, true, false, vocab, width, r, 1, grad, vocab, xs, width, 1, dw, width)
	}
}

// lmHeadOp keeps the gradients its forward pass computes for its gradient ops.
type lmHeadOp struct {
	opInfo
	cap                            float64
	reduction                      Reduction
	differentiated                 bool // set by SymDiff
	losses, dx, dw, scale, scratch Buffer
}

func (op *lmHeadOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m, v := G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a}
	if op.reduction == PerToken {
		return hm.NewFnType(m, m, G.TensorType{Dims: 1, Of: tensor.Int}, v)
	}
	if op.reduction == Weighted {
		return hm.NewFnType(m, m, G.TensorType{Dims: 1, Of: tensor.Int}, v, a)
	}
	return hm.NewFnType(m, m, G.TensorType{Dims: 1, Of: tensor.Int}, a)
}

func (op *lmHeadOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if op.reduction == PerToken {
		return tensor.Shape{in[0].(tensor.Shape)[0]}, nil
	}
	return tensor.ScalarShape(), nil
}

func (op *lmHeadOp) DiffWRT(n int) []bool { return append([]bool{true, true}, make([]bool, n-2)...) }

// lmHeadInputs checks x (N, C), W (V, C) and N int targets, which lie in the engine's
// memory.
func lmHeadInputs(in []G.Value) (x, w *tensor.Dense, targets []int, err error) {
	if x, err = dense("lm head input", in[0]); err != nil {
		return
	}
	if w, err = dense("lm head weight", in[1]); err != nil {
		return
	}
	if err = sameDtype(x, w); err != nil || x.Shape()[1] != w.Shape()[1] {
		return nil, nil, nil, fmt.Errorf("lm head: input %v and weight %v do not fit (%v)", x.Shape(), w.Shape(), err)
	}
	t, ok := in[2].(*tensor.Dense)
	if !ok || t.Dtype() != tensor.Int || !t.Shape().Eq(tensor.Shape{x.Shape()[0]}) {
		return nil, nil, nil, fmt.Errorf("lm head: want %d int targets, got %v", x.Shape()[0], in[2])
	}
	return x, w, t.Ints(), nil
}

// scratchShape is the logits' chunk on engine e.
func (op *lmHeadOp) scratchShape(e tensor.Engine, n, vocab int) tensor.Shape {
	return tensor.Shape{min(lmHeadRows(engineGemm(e), vocab), n) * vocab}
}

// gradients are the writes of a pass that computes the gradients.
func (op *lmHeadOp) gradients(e tensor.Engine, in []tensor.Shape) []Write {
	n, v := in[0][0], in[1][0]
	return []Write{{Buf: &op.scale, Shape: tensor.Shape{n}}, {Buf: &op.dx, Shape: in[0]},
		{Buf: &op.dw, Shape: in[1]}, {Buf: &op.scratch, Shape: op.scratchShape(e, n, v)}}
}

// Plan: the losses and the logits' chunk; for the mean or the sum, when differentiated,
// the gradients too (the gradient ops only scale them).
func (op *lmHeadOp) Plan(e tensor.Engine, in []tensor.Shape) Plan {
	n := in[0][0]
	losses := Write{Buf: &op.losses, Shape: tensor.Shape{n}}
	if op.differentiated && op.reduction != PerToken {
		return Plan{Writes: append(op.gradients(e, in), losses)}
	}
	p := Plan{Writes: []Write{losses, {Buf: &op.scratch, Shape: op.scratchShape(e, n, in[1][0])}}}
	if op.reduction == PerToken {
		p.Result = &op.losses
	}
	return p
}

// pass runs LinearCrossEntropyPass on the op's buffers; scale nil computes no gradients.
func (op *lmHeadOp) pass(x, w *tensor.Dense, targets []int, losses, scale *tensor.Dense) {
	n, c, v := x.Shape()[0], x.Shape()[1], w.Shape()[0]
	dt, eng := x.Dtype(), x.Engine()
	scratch := op.scratch.get(dt, eng, op.scratchShape(eng, n, v)...)
	var dx, dw *tensor.Dense
	if scale != nil {
		dx, dw = op.dx.get(dt, eng, n, c), op.dw.get(dt, eng, v, c)
		zero(dw)
	}
	switch dt {
	case tensor.Float32:
		LinearCrossEntropyPass(gemmOf(x), floats[float32](x), floats[float32](w), targets, c, v, float32(op.cap),
			optionalFloats[float32](losses), optionalFloats[float32](scale), optionalFloats[float32](dx), optionalFloats[float32](dw), floats[float32](scratch))
	default:
		LinearCrossEntropyPass(gemmOf(x), floats[float64](x), floats[float64](w), targets, c, v, op.cap,
			optionalFloats[float64](losses), optionalFloats[float64](scale), optionalFloats[float64](dx), optionalFloats[float64](dw), floats[float64](scratch))
	}
}

// unitScale is each row's loss weight in a loss reduced without weights: 1/count for the
// mean, 1 for the sum.
func (op *lmHeadOp) unitScale(targets []int) float64 {
	if op.reduction == Mean {
		return 1 / float64(max(validCount(targets), 1))
	}
	return 1
}

func (op *lmHeadOp) Do(in ...G.Value) (G.Value, error) {
	x, w, targets, err := lmHeadInputs(in)
	if err != nil {
		return nil, err
	}
	n, dt, eng := x.Shape()[0], x.Dtype(), x.Engine()
	hostTargets, err := backend.Readable(eng, targets)
	if err != nil {
		return nil, err
	}
	if err := CheckIDs("target", hostTargets, w.Shape()[0], true); err != nil {
		return nil, err
	}
	var weights *tensor.Dense
	if op.reduction == Weighted {
		if weights, err = dense("lm head loss weights", in[3], n); err != nil || weights.Dtype() != dt {
			return nil, fmt.Errorf("%v: want %d loss weights of %v: %v", op, n, dt, err)
		}
	}
	losses := op.losses.get(dt, eng, n)
	var scale *tensor.Dense
	if op.differentiated {
		scale = op.scale.get(dt, eng, n)
		if weights != nil {
			copyRows(scale, 0, weights)
		} else if err := fill(scale, op.unitScale(hostTargets)); err != nil {
			return nil, err
		}
	}
	op.pass(x, w, targets, losses, scale)
	if op.reduction == PerToken {
		return losses, nil
	}
	var total float64
	if dt == tensor.Float32 {
		total, err = reduce[float32](losses, weights, op.unitScale(hostTargets))
		return G.NewF32(float32(total)), err
	}
	total, err = reduce[float64](losses, weights, op.unitScale(hostTargets))
	return G.NewF64(total), err
}

// reduce is Σ_i w_i·losses_i, with the weights w (unit each when nil), read by the host in
// float64.
func reduce[T Float](losses, w *tensor.Dense, unit float64) (float64, error) {
	l, err := backend.Readable(losses.Engine(), floats[T](losses))
	if err != nil {
		return 0, err
	}
	var weights []T
	if w != nil {
		if weights, err = backend.Readable(w.Engine(), floats[T](w)); err != nil {
			return 0, err
		}
	}
	var total float64
	for i, x := range l {
		if weights != nil {
			total += float64(weights[i]) * float64(x)
		} else {
			total += float64(x)
		}
	}
	return total * unit, nil
}

func (op *lmHeadOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if op.reduction == PerToken {
		return nil, fmt.Errorf("%v: per-token losses are not differentiated; weight them (LinearCrossEntropyWeighted)", op)
	}
	op.differentiated = true
	dx, err := G.ApplyOp(&lmHeadGradOp{opInfo: opInfo{name: "Grad" + op.name, arity: 4}, fwd: op}, in[0], in[1], in[2], grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&lmHeadWeightGradOp{opInfo: opInfo{name: "WeightGrad" + op.name, arity: 2}, fwd: op}, dx, in[1])
	return append(G.Nodes{dx, dw}, make(G.Nodes, len(in)-2)...), err
}

// lmHeadGradOp computes dx from (x, W, targets, dloss), and dW with it: it scales what the
// forward pass computed by the scalar dloss.
type lmHeadGradOp struct {
	opInfo
	fwd *lmHeadOp
}

func (op *lmHeadGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(m, m, G.TensorType{Dims: 1, Of: tensor.Int}, a, m)
}

func (op *lmHeadGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

// Plan: the forward op's gradients, scaled in place.
func (op *lmHeadGradOp) Plan(tensor.Engine, []tensor.Shape) Plan {
	return Plan{Result: &op.fwd.dx, Reads: []*Buffer{&op.fwd.dx, &op.fwd.dw}}
}

func (op *lmHeadGradOp) Do(in ...G.Value) (G.Value, error) {
	x, _, _, err := lmHeadInputs(in)
	if err != nil {
		return nil, err
	}
	s, ok := in[3].(G.Scalar)
	if !ok {
		return nil, fmt.Errorf("%v: want a scalar loss gradient, got %T", op, in[3])
	}
	dx, dw := op.fwd.dx.t, op.fwd.dw.t
	if dx == nil || !dx.Shape().Eq(x.Shape()) || dx.Dtype() != x.Dtype() {
		return nil, fmt.Errorf("%v: the forward op has not run", op)
	}
	if g := scalarFloat(s); g != 1 {
		for _, t := range []*tensor.Dense{dx, dw} {
			scaleBy(t, g)
		}
	}
	return dx, nil
}

// lmHeadWeightGradOp returns the dW its sibling computed; it reads the sibling's output so
// that Gorgonia runs it after.
type lmHeadWeightGradOp struct {
	opInfo
	fwd *lmHeadOp
}

func (op *lmHeadWeightGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}

func (op *lmHeadWeightGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[1].(tensor.Shape).Clone(), nil
}

func (op *lmHeadWeightGradOp) Plan(tensor.Engine, []tensor.Shape) Plan {
	return Plan{Result: &op.fwd.dw}
}

func (op *lmHeadWeightGradOp) Do(in ...G.Value) (G.Value, error) {
	w, ok := in[1].(*tensor.Dense)
	dw := op.fwd.dw.t
	if !ok || dw == nil || !dw.Shape().Eq(w.Shape()) {
		return nil, fmt.Errorf("%v: the gradient op has not run", op)
	}
	return dw, nil
}

// fill sets every element of a float tensor to x, a write of the host's.
func fill(t *tensor.Dense, x float64) error {
	switch d := t.Data().(type) {
	case []float32:
		return backend.Write(t.Engine(), d, repeat(float32(x), len(d)))
	case []float64:
		return backend.Write(t.Engine(), d, repeat(x, len(d)))
	}
	return fmt.Errorf("fill: a tensor of %v", t.Dtype())
}

// repeat is n copies of x.
func repeat[T any](x T, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = x
	}
	return s
}
