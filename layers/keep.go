package layers

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Keep makes a node that reads every node given and computes nothing (its value is 0). A
// graph's results, such as the gradients of its parameters, are read after the machine
// has run; while something still reads them at the very end, Gorgonia's register
// allocator cannot hand their memory to a later op. Build it after everything else.
func Keep(nodes ...*G.Node) (*G.Node, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("keep: no nodes")
	}
	return G.ApplyOp(&keepOp{opInfo{name: fmt.Sprintf("Keep{%d}", len(nodes)), arity: len(nodes)}}, nodes...)
}

type keepOp struct{ opInfo }

func (op *keepOp) Type() hm.Type {
	ts := make([]hm.Type, op.arity+1)
	for i := range ts[:op.arity] {
		ts[i] = hm.TypeVariable(rune(0x100 + i)) // one variable per input: they differ in type
	}
	ts[op.arity] = tensor.Float32
	return hm.NewFnType(ts...)
}

func (op *keepOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

func (op *keepOp) Do(...G.Value) (G.Value, error) { return G.NewF32(0), nil }
