package layers

import (
	"gorgonia.org/tensor"
)

// Memory is an engine whose tensors live in memory of its own: an accelerator's that the
// host addresses too (CUDA managed memory, Metal shared buffers), so that its products, and
// its kernels if it is a Device, use them where they are. Ops make their outputs, and graphs
// their parameters and inputs, with Make (through NewTensor).
//
// Work on that memory may be queued: the host may read or write a tensor only after Sync,
// which also reports the first failure of the queued work. graph.Model.Run and the
// optimizers' steps end with a Sync, so what they leave is the host's to read.
type Memory interface {
	// Make returns n zeroed elements of dt (tensor.Float32 or tensor.Int) in the engine's
	// memory, as []float32 or []int. The memory lives as long as the engine.
	Make(dt tensor.Dtype, n int) any
	// Sync waits for the queued work and returns its first failure.
	Sync() error
}

// Device is a Memory engine that also runs the float32 kernels of the ops on its
// accelerator, so that a training step never copies activations or weights across a bus.
// The slices its kernels get must come from Make.
type Device interface {
	Gemm
	Memory
	Kernels
}

// Kernels are the float32 kernels of the ops, as a device runs them. Each computes what the
// generic kernel of the same name does; the attention and cross-entropy kernels take whole
// fused layouts (see AttnViews) instead of Views, and need no scratch from the caller.
type Kernels interface {
	Zero(x []float32)
	Copy(dst, src []float32)
	Scale(x []float32, a float32)
	AddForward(y, a, b []float32)
	EmbeddingForward(y, table []float32, ids []int, width int)
	EmbeddingBackward(dtable, dy []float32, ids []int, width int)
	RMSNormForward(y, x []float32, width, size, heads int)
	RMSNormBackward(dx, x, dy []float32, width, size, heads int)
	RotaryForward(y, x []float32, width int, r Rotation, inverse bool)
	ReLU2Forward(y, x []float32)
	ReLU2Backward(dx, y, dy []float32)
	SoftcapForward(y, x []float32, cap float32)
	SoftcapBackward(dx, y, dy []float32, cap float32)
	// AttentionForward takes q|k|v fused as the graph's Attention op does, y (B·T, H·D) and
	// lse (B, H, T); Tq must equal Tk.
	AttentionForward(s AttnShape, qkv, y, lse []float32)
	AttentionBackward(s AttnShape, qkv, y, dy, dqkv, lse []float32)
	CrossEntropyForward(losses, logits []float32, targets []int, vocab int, cap float32, grad, scale []float32)
}

// deviceOf returns the device a float32 tensor's engine is, or nil.
func deviceOf(t *tensor.Dense) Device {
	if d, ok := t.Engine().(Device); ok && t.Dtype() == tensor.Float32 {
		return d
	}
	return nil
}

// NewTensor returns a zeroed tensor of dt and shape on eng: in the engine's memory when eng
// is a Memory and dt a type it makes.
func NewTensor(eng tensor.Engine, dt tensor.Dtype, shape ...int) *tensor.Dense {
	if d, ok := eng.(Memory); ok && (dt == tensor.Float32 || dt == tensor.Int) {
		n := tensor.Shape(shape).TotalSize()
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d.Make(dt, n)), tensor.WithEngine(eng))
	}
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape...), tensor.WithEngine(eng))
}

// zero clears a float tensor, on its device when it has one.
func zero(t *tensor.Dense) {
	if d := deviceOf(t); d != nil {
		d.Zero(floats[float32](t))
		return
	}
	t.Zero()
}

// scaleBy multiplies a float tensor by x, on its device when it has one.
func scaleBy(t *tensor.Dense, x float64) error {
	if d := deviceOf(t); d != nil {
		d.Scale(floats[float32](t), float32(x))
		return nil
	}
	_, err := t.MulScalar(castTo(t.Dtype(), x), true, tensor.UseUnsafe())
	return err
}

// copyRows copies src into dst from element at, on the device when dst has one.
func copyRows(dst *tensor.Dense, at int, src *tensor.Dense) {
	switch d := dst.Data().(type) {
	case []float32:
		if dev := deviceOf(dst); dev != nil {
			s := floats[float32](src)
			dev.Copy(d[at:at+len(s)], s)
			return
		}
		copy(d[at:], floats[float32](src))
	case []float64:
		copy(d[at:], floats[float64](src))
	}
}
