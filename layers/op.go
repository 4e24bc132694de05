package layers

import (
	"fmt"
	"gochat/backend"
	"hash"
	"hash/fnv"

	"gorgonia.org/tensor"
)

// Float is the element type of every kernel.
type Float = backend.Float

// opInfo supplies the Gorgonia Op methods that every op here answers the same way. name
// must hold every parameter of the op: Gorgonia merges nodes whose ops hash alike. No op
// overwrites its inputs for Gorgonia: where a result may take an input's memory, the op's
// Plan says so and the graph's planner decides.
type opInfo struct {
	name  string
	arity int
}

func (o opInfo) Arity() int            { return o.arity }
func (o opInfo) ReturnsPtr() bool      { return false }
func (o opInfo) CallsExtern() bool     { return false }
func (o opInfo) OverwritesInput() int  { return -1 }
func (o opInfo) WriteHash(h hash.Hash) { fmt.Fprint(h, o.name) }
func (o opInfo) String() string        { return o.name }
func (o opInfo) Hashcode() uint32      { h := fnv.New32a(); o.WriteHash(h); return h.Sum32() }
func (o opInfo) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

// dense checks that v is a dense float tensor of the given shape (nil: any shape).
func dense(what string, v any, shape ...int) (*tensor.Dense, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%s: want a dense tensor, got %T", what, v)
	}
	if dt := t.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%s: want float32 or float64, got %v", what, dt)
	}
	if shape != nil && !t.Shape().Eq(tensor.Shape(shape)) {
		return nil, fmt.Errorf("%s: want shape %v, got %v", what, tensor.Shape(shape), t.Shape())
	}
	return t, nil
}

// sameDtype checks that every tensor has the dtype of the first.
func sameDtype(ts ...*tensor.Dense) error {
	for _, t := range ts[1:] {
		if t.Dtype() != ts[0].Dtype() {
			return fmt.Errorf("mixed dtypes %v and %v", ts[0].Dtype(), t.Dtype())
		}
	}
	return nil
}

// floats returns a tensor's backing slice as []T.
func floats[T Float](t *tensor.Dense) []T { return t.Data().([]T) }
