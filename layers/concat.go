package layers

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConcatRows stacks matrices with the same number of columns: the q, k and v weights
// become one [q; k; v] matrix, so that one product computes q|k|v. Its gradient gives each
// input its rows of the incoming gradient, as copies (a view into a buffer that Gorgonia
// may reuse would not be safe to keep).
func ConcatRows(ms ...*G.Node) (*G.Node, error) {
	if len(ms) == 0 {
		return nil, fmt.Errorf("concat: no matrices")
	}
	rows := make([]int, len(ms))
	for i, m := range ms {
		if m.Dims() != 2 || m.Shape()[1] != ms[0].Shape()[1] {
			return nil, fmt.Errorf("concat: matrix %d has shape %v, want %d columns", i, m.Shape(), ms[0].Shape()[1])
		}
		rows[i] = m.Shape()[0]
	}
	return G.ApplyOp(&concatOp{opInfo: opInfo{name: fmt.Sprintf("ConcatRows%v", rows), arity: len(ms)}, rows: rows}, ms...)
}

type concatOp struct {
	opInfo
	rows []int
	out  Buffer
}

func (op *concatOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, len(op.rows)+1)
	for i := range ts {
		ts[i] = a
	}
	return hm.NewFnType(ts...)
}

func (op *concatOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	total := 0
	for _, r := range op.rows {
		total += r
	}
	return tensor.Shape{total, in[0].(tensor.Shape)[1]}, nil
}

func (op *concatOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	shape, _ := op.InferShape(dimSizers(in)...)
	return single(&op.out, shape)
}

func (op *concatOp) Do(in ...G.Value) (G.Value, error) {
	first, err := dense("concat input", in[0])
	if err != nil {
		return nil, err
	}
	cols, total := first.Shape()[1], 0
	for _, r := range op.rows {
		total += r
	}
	out := op.out.get(first.Dtype(), first.Engine(), total, cols)
	at := 0
	for i, v := range in {
		m, err := dense("concat input", v, op.rows[i], cols)
		if err != nil {
			return nil, err
		}
		if err := sameDtype(first, m); err != nil {
			return nil, err
		}
		copyRows(out, at*cols, m)
		at += op.rows[i]
	}
	return out, nil
}

func (op *concatOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	grads := make(G.Nodes, len(in))
	at := 0
	for i, r := range op.rows {
		name := fmt.Sprintf("Rows{%d:%d}", at, at+r)
		g, err := G.ApplyOp(&rowsOp{opInfo: opInfo{name: name, arity: 1}, from: at, rows: r}, grad)
		if err != nil {
			return nil, err
		}
		grads[i], at = g, at+r
	}
	return grads, nil
}

// rowsOp copies rows [from, from+rows) of a matrix.
type rowsOp struct {
	opInfo
	from, rows int
	out        Buffer
}

func (op *rowsOp) Type() hm.Type { a := hm.TypeVariable('a'); return hm.NewFnType(a, a) }

func (op *rowsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.rows, in[0].(tensor.Shape)[1]}, nil
}

func (op *rowsOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	return single(&op.out, tensor.Shape{op.rows, in[0][1]})
}

func (op *rowsOp) Do(in ...G.Value) (G.Value, error) {
	m, err := dense("rows input", in[0])
	if err != nil {
		return nil, err
	}
	cols := m.Shape()[1]
	if m.Shape()[0] < op.from+op.rows {
		return nil, fmt.Errorf("%v: input has only %d rows", op, m.Shape()[0])
	}
	out := op.out.get(m.Dtype(), m.Engine(), op.rows, cols)
	switch d := m.Data().(type) {
	case []float32:
		kernelsOf[float32](m).Copy(floats[float32](out), d[op.from*cols:(op.from+op.rows)*cols])
	case []float64:
		kernelsOf[float64](m).Copy(floats[float64](out), d[op.from*cols:(op.from+op.rows)*cols])
	}
	return out, nil
}
