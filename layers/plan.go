package layers

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Buffer is memory an op writes on each run and keeps until the next: its output, or a
// value its gradient op reads later (attention's log-sum-exps). A graph's memory planner
// (graph.Build) binds every buffer of its ops to a piece of one allocation, shared with
// buffers whose lifetimes do not overlap; an op whose buffer nobody bound (Gorgonia's own
// machine, as the gradient checks run ops) makes it on first use and keeps it.
type Buffer struct{ t *tensor.Dense }

// Bind makes t the buffer's memory from now on.
func (b *Buffer) Bind(t *tensor.Dense) { b.t = t }

// Tensor is the buffer's memory: what the last run wrote, or was bound.
func (b *Buffer) Tensor() *tensor.Dense { return b.t }

// get returns the buffer's tensor, made anew only when it has no tensor of this dtype,
// engine and shape.
func (b *Buffer) get(dt tensor.Dtype, eng tensor.Engine, shape ...int) *tensor.Dense {
	if b.t == nil || b.t.Dtype() != dt || !b.t.Shape().Eq(tensor.Shape(shape)) || b.t.Engine() != eng {
		b.t = NewTensor(eng, dt, shape...)
	}
	return b.t
}

// Plan says what memory an op's run writes and reads, for a planner that assigns it.
type Plan struct {
	// Writes are the values each run writes anew, with their shapes.
	Writes []Write
	// Result is the buffer holding the op's result: one of Writes, or a buffer that an
	// earlier op wrote (a forward op's gradient, which its gradient op hands on). nil: the
	// result is a scalar the op makes itself.
	Result *Buffer
	// Reads are the buffers besides its inputs that the op reads (or updates in place):
	// values its forward op kept for it.
	Reads []*Buffer
}

// Write is a value an op writes.
type Write struct {
	Buf   *Buffer
	Shape tensor.Shape
	// Alias lists the inputs whose memory the value may take when this op is their last
	// reader: the kernel allows its output to be that input.
	Alias []int
}

// Planned is an op that tells a planner its Plan on engine e, for inputs of shapes in.
type Planned interface {
	Plan(e tensor.Engine, in []tensor.Shape) Plan
}

// dimSizers passes shapes to an op's InferShape.
func dimSizers(in []tensor.Shape) []G.DimSizer {
	d := make([]G.DimSizer, len(in))
	for i, s := range in {
		d[i] = s
	}
	return d
}

// single is the plan of an op whose only write is its result, out, of the given shape.
func single(out *Buffer, shape tensor.Shape, alias ...int) Plan {
	return Plan{Writes: []Write{{Buf: out, Shape: shape, Alias: alias}}, Result: out}
}
