package layers

import (
	"fmt"

	"gochat/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Embedding looks up rows of the table (V, C) for int ids (N): the result is (N, C).
func Embedding(table, ids *G.Node) (*G.Node, error) {
	if table.Dims() != 2 || ids.Dims() != 1 {
		return nil, fmt.Errorf("embedding: want a table (V, C) and ids (N), got %v and %v", table.Shape(), ids.Shape())
	}
	return G.ApplyOp(&embeddingOp{opInfo: opInfo{name: "Embedding", arity: 2}}, table, ids)
}

// EmbeddingForward copies table row ids[i] to row i of y, and fails on an id outside [0, V).
func EmbeddingForward[T Float](y, table []T, ids []int, width int) error {
	if err := CheckIDs("token id", ids, len(table)/width, false); err != nil {
		return err
	}
	parallel.For(len(ids), width, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(y[i*width:(i+1)*width], table[ids[i]*width:(ids[i]+1)*width])
		}
	})
	return nil
}

// EmbeddingBackward sets dtable to the sum, per id, of the rows of dy that looked it up.
// Work is split by columns so that repeated ids never race.
func EmbeddingBackward[T Float](dtable, dy []T, ids []int, width int) {
	parallel.For(width, len(ids), func(lo, hi int) {
		for r := 0; r < len(dtable)/width; r++ {
			clear(dtable[r*width+lo : r*width+hi])
		}
		for i, id := range ids {
			dst, src := dtable[id*width+lo:id*width+hi], dy[i*width+lo:i*width+hi]
			for j, g := range src {
				dst[j] += g
			}
		}
	})
}

type embeddingOp struct {
	opInfo
	out Buffer
}

func (op *embeddingOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(m, G.TensorType{Dims: 1, Of: tensor.Int}, m)
}

func (op *embeddingOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[1].(tensor.Shape).TotalSize(), in[0].(tensor.Shape)[1]}, nil
}

func (op *embeddingOp) DiffWRT(int) []bool { return []bool{true, false} }

// embeddingInputs checks a float table (V, C) and int ids.
func embeddingInputs(t, i G.Value) (*tensor.Dense, []int, error) {
	table, err := dense("embedding table", t)
	if err != nil {
		return nil, nil, err
	}
	ids, ok := i.(*tensor.Dense)
	if !ok || ids.Dtype() != tensor.Int || table.Dims() != 2 {
		return nil, nil, fmt.Errorf("embedding: want a table matrix and int ids, got %v and %v", t, i)
	}
	return table, ids.Ints(), nil
}

func (op *embeddingOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	return single(&op.out, tensor.Shape{in[1].TotalSize(), in[0][1]})
}

func (op *embeddingOp) Do(in ...G.Value) (G.Value, error) {
	table, ids, err := embeddingInputs(in[0], in[1])
	if err != nil {
		return nil, err
	}
	c := table.Shape()[1]
	if err := checkIDsOn(table.Engine(), "token id", ids, table.Shape()[0], false); err != nil {
		return nil, err
	}
	y := op.out.get(table.Dtype(), table.Engine(), len(ids), c)
	switch table.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](table).EmbeddingForward(floats[float32](y), floats[float32](table), ids, c)
	case tensor.Float64:
		kernelsOf[float64](table).EmbeddingForward(floats[float64](y), floats[float64](table), ids, c)
	}
	return y, nil
}

func (op *embeddingOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(&embeddingGradOp{opInfo: opInfo{name: "EmbeddingGrad", arity: 3}}, in[0], in[1], grad)
	return G.Nodes{d, nil}, err
}

// embeddingGradOp computes dtable from (table, ids, dy); the table gives only its shape.
type embeddingGradOp struct {
	opInfo
	out Buffer
}

func (op *embeddingGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(m, G.TensorType{Dims: 1, Of: tensor.Int}, m, m)
}

func (op *embeddingGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op *embeddingGradOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	return single(&op.out, in[0])
}

func (op *embeddingGradOp) Do(in ...G.Value) (G.Value, error) {
	table, ids, err := embeddingInputs(in[0], in[1])
	if err != nil {
		return nil, err
	}
	c := table.Shape()[1]
	dy, err := dense("embedding gradient", in[2], len(ids), c)
	if err != nil {
		return nil, err
	}
	d := op.out.get(table.Dtype(), table.Engine(), table.Shape()...)
	switch table.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](table).EmbeddingBackward(floats[float32](d), floats[float32](dy), ids, c)
	case tensor.Float64:
		kernelsOf[float64](table).EmbeddingBackward(floats[float64](d), floats[float64](dy), ids, c)
	}
	return d, nil
}
