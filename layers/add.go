package layers

import (
	"fmt"

	"gochat/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Add is the residual connection a + b. Unlike Gorgonia's own Add, it keeps its output
// buffer across runs, splits the work across processors, and may take the memory of an
// operand that dies here; its gradient passes the incoming gradient to both inputs.
func Add(a, b *G.Node) (*G.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("add: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	return G.ApplyOp(&addOp{opInfo: opInfo{name: "Add", arity: 2}}, a, b)
}

// AddForward sets y = a + b; y may be a or b.
func AddForward[T Float](y, a, b []T) {
	parallel.For(len(y), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = a[i] + b[i]
		}
	})
}

type addOp struct {
	opInfo
	out Buffer
}

func (op *addOp) Type() hm.Type { a := hm.TypeVariable('a'); return hm.NewFnType(a, a, a) }

func (op *addOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

// Plan: the sum may take either operand's memory.
func (op *addOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan { return single(&op.out, in[0], 0, 1) }

func (op *addOp) Do(in ...G.Value) (G.Value, error) {
	a, err := dense("add operand", in[0])
	if err != nil {
		return nil, err
	}
	b, err := dense("add operand", in[1], a.Shape()...)
	if err != nil {
		return nil, err
	}
	if err := sameDtype(a, b); err != nil {
		return nil, err
	}
	y := op.out.get(a.Dtype(), a.Engine(), a.Shape()...)
	switch a.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](a).AddForward(floats[float32](y), floats[float32](a), floats[float32](b))
	case tensor.Float64:
		kernelsOf[float64](a).AddForward(floats[float64](y), floats[float64](a), floats[float64](b))
	}
	return y, nil
}

func (op *addOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, grad}, nil
}
