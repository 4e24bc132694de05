package layers

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is nanochat's bias-free nn.Linear: x·Wᵀ for x (N, in) and a weight W (out, in) in
// PyTorch's layout.
func Linear(x, w *G.Node) (*G.Node, error) { return MatMul(x, w, false, true) }

// MatMul is op(a)·op(b), where op transposes its operand when the flag is set. The product
// runs on the engine of a, without materialising a transpose.
func MatMul(a, b *G.Node, transA, transB bool) (*G.Node, error) {
	return G.ApplyOp(&matMulOp{
		opInfo: opInfo{name: fmt.Sprintf("MatMul{%t,%t}", transA, transB), arity: 2},
		transA: transA, transB: transB,
	}, a, b)
}

type matMulOp struct {
	opInfo
	transA, transB bool
	out            Buffer
}

func (op *matMulOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}

// dims returns m, n, k of the product of shapes a and b.
func (op *matMulOp) dims(a, b tensor.Shape) (m, n, k int, err error) {
	if a.Dims() != 2 || b.Dims() != 2 {
		return 0, 0, 0, fmt.Errorf("%v: want matrices, got shapes %v and %v", op, a, b)
	}
	m, k = a[0], a[1]
	if op.transA {
		m, k = k, m
	}
	kb, n := b[0], b[1]
	if op.transB {
		kb, n = n, kb
	}
	if k != kb {
		return 0, 0, 0, fmt.Errorf("%v: inner dimensions of %v and %v differ", op, a, b)
	}
	return m, n, k, nil
}

func (op *matMulOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	m, n, _, err := op.dims(in[0].(tensor.Shape), in[1].(tensor.Shape))
	return tensor.Shape{m, n}, err
}

func (op *matMulOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	m, n, _, _ := op.dims(in[0], in[1])
	return single(&op.out, tensor.Shape{m, n})
}

func (op *matMulOp) Do(in ...G.Value) (G.Value, error) {
	a, err := dense("matmul left operand", in[0])
	if err != nil {
		return nil, err
	}
	b, err := dense("matmul right operand", in[1])
	if err != nil {
		return nil, err
	}
	if err := sameDtype(a, b); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	m, n, k, err := op.dims(a.Shape(), b.Shape())
	if err != nil {
		return nil, err
	}
	c := op.out.get(a.Dtype(), a.Engine(), m, n)
	lda, ldb := a.Shape()[1], b.Shape()[1]
	switch a.Dtype() {
	case tensor.Float32:
		gemm(gemmOf(a), op.transA, op.transB, m, n, k, 1, floats[float32](a), lda, floats[float32](b), ldb, 0, floats[float32](c), n)
	case tensor.Float64:
		gemm(gemmOf(a), op.transA, op.transB, m, n, k, 1, floats[float64](a), lda, floats[float64](b), ldb, 0, floats[float64](c), n)
	}
	return c, nil
}

// SymDiff gives the gradients of C = op(A)·op(B):
// dA = dC·op(B)ᵀ (or op(B)·dCᵀ when A is transposed), dB = op(A)ᵀ·dC (or dCᵀ·op(A)).
func (op *matMulOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	a, b := in[0], in[1]
	var da, db *G.Node
	var err error
	if op.transA {
		da, err = MatMul(b, grad, op.transB, true)
	} else {
		da, err = MatMul(grad, b, false, !op.transB)
	}
	if err != nil {
		return nil, err
	}
	if op.transB {
		db, err = MatMul(grad, a, true, op.transA)
	} else {
		db, err = MatMul(a, grad, !op.transA, false)
	}
	return G.Nodes{da, db}, err
}
