package layers

import (
	"fmt"

	"gochat/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU2 is nanochat's MLP activation relu(x)².
func ReLU2(x *G.Node) (*G.Node, error) { return applyElementwise(x, nil, pointwise{kind: "ReLU2"}) }

// Softcap is cap·tanh(x/cap), nanochat's logit softcap (cap 15).
func Softcap(x *G.Node, cap float64) (*G.Node, error) {
	if cap <= 0 {
		return nil, fmt.Errorf("softcap: cap must be positive, got %g", cap)
	}
	return applyElementwise(x, nil, pointwise{kind: "Softcap", cap: cap})
}

// ReLU2Forward sets y = relu(x)².
func ReLU2Forward[T Float](y, x []T) {
	parallel.For(len(x), 1, func(lo, hi int) {
		for i, v := range x[lo:hi] {
			v = max(v, 0)
			y[lo+i] = v * v
		}
	})
}

// ReLU2Backward sets dx = 2·relu(x)·dy from the forward output y = relu(x)²:
// relu(x) = √y. dx may be dy.
func ReLU2Backward[T Float](dx, y, dy []T) {
	parallel.For(len(y), 8, func(lo, hi int) {
		for i, v := range y[lo:hi] {
			dx[lo+i] = 2 * sqrtf(v) * dy[lo+i]
		}
	})
}

// SoftcapForward sets y = cap·tanh(x/cap).
func SoftcapForward[T Float](y, x []T, cap T) {
	parallel.For(len(x), 8, func(lo, hi int) {
		tanhScaled(y[lo:hi], x[lo:hi], 1/cap)
		for i := lo; i < hi; i++ {
			y[i] *= cap
		}
	})
}

// SoftcapBackward sets dx = (1 − tanh²(x/cap))·dy from the forward output
// y = cap·tanh(x/cap). dx may be dy.
func SoftcapBackward[T Float](dx, y, dy []T, cap T) {
	parallel.For(len(y), 1, func(lo, hi int) {
		for i, v := range y[lo:hi] {
			t := v / cap
			dx[lo+i] = (1 - t*t) * dy[lo+i]
		}
	})
}

// pointwise names an elementwise function and its parameter.
type pointwise struct {
	kind string
	cap  float64
}

// runPointwise applies the function to x (dy == nil) or, with x the function's output,
// its gradient, with the kernels k.
func runPointwise[T Float](k opKernels[T], f pointwise, out, x, dy []T) {
	switch {
	case f.kind == "ReLU2" && dy == nil:
		k.ReLU2Forward(out, x)
	case f.kind == "ReLU2":
		k.ReLU2Backward(out, x, dy)
	case dy == nil:
		k.SoftcapForward(out, x, T(f.cap))
	default:
		k.SoftcapBackward(out, x, dy, T(f.cap))
	}
}

// elementwiseOp applies f to its one input x, or with two inputs (y, dy), y = f(x), f's
// gradient. Both may write over their last input.
type elementwiseOp struct {
	opInfo
	f   pointwise
	out Buffer
}

func applyElementwise(x, dy *G.Node, f pointwise) (*G.Node, error) {
	name := fmt.Sprintf("%s{%g}", f.kind, f.cap)
	if dy == nil {
		return G.ApplyOp(&elementwiseOp{opInfo: opInfo{name: name, arity: 1}, f: f}, x)
	}
	return G.ApplyOp(&elementwiseOp{opInfo: opInfo{name: name + "Grad", arity: 2}, f: f}, x, dy)
}

func (op *elementwiseOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	if op.arity == 1 {
		return hm.NewFnType(a, a)
	}
	return hm.NewFnType(a, a, a)
}

func (op *elementwiseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op *elementwiseOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	return single(&op.out, in[0], op.arity-1)
}

func (op *elementwiseOp) Do(in ...G.Value) (G.Value, error) {
	x, err := dense(op.name+" input", in[0])
	if err != nil {
		return nil, err
	}
	var dy *tensor.Dense
	if op.arity == 2 {
		if dy, err = dense(op.name+" gradient", in[1], x.Shape()...); err != nil {
			return nil, err
		}
	}
	out := op.out.get(x.Dtype(), x.Engine(), x.Shape()...)
	switch x.Dtype() {
	case tensor.Float32:
		runPointwise(kernelsOf[float32](x), op.f, floats[float32](out), floats[float32](x), optionalFloats[float32](dy))
	case tensor.Float64:
		runPointwise(kernelsOf[float64](x), op.f, floats[float64](out), floats[float64](x), optionalFloats[float64](dy))
	}
	return out, nil
}

// SymDiff of the function applies its gradient op to its output; the gradient op is not
// differentiated.
func (op *elementwiseOp) SymDiff(_ G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if op.arity != 1 {
		return nil, fmt.Errorf("%v: second derivatives are not implemented", op)
	}
	dx, err := applyElementwise(out, grad, op.f)
	return G.Nodes{dx}, err
}

// optionalFloats is floats for a tensor that may be nil.
func optionalFloats[T Float](t *tensor.Dense) []T {
	if t == nil {
		return nil
	}
	return floats[T](t)
}
