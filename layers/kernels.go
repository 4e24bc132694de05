package layers

import (
	"fmt"
	"sync"
	"unsafe"

	"gochat/backend"
	"gochat/internal/parallel"
	"gochat/internal/sgemm"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/tensor"
)

// opKernels are the kernels of the ops in T, with the engine's matrix products. Every
// backend is one for float32; HostOps is one for both.
type opKernels[T Float] interface {
	backend.Gemm
	backend.KernelsOf[T]
}

// kernelsOf returns the kernels for a tensor of T: its engine's when the engine has them
// (every backend, for float32), else the host's over the engine's products; float64 (the
// gradient checks) always runs on the host.
func kernelsOf[T Float](t *tensor.Dense) opKernels[T] { return kernelsFor[T](gemmOf(t)) }

// kernelsFor returns e's kernels for T, or the host's over e's products.
func kernelsFor[T Float](e backend.Gemm) opKernels[T] {
	if k, ok := e.(opKernels[T]); ok {
		return k
	}
	return HostOps[T]{Gemm: e}
}

// gemmOf returns the engine of t when it does matrix products, else gochat's own Go
// products: a tensor of a plain Gorgonia engine (the tests of this package make them).
func gemmOf(t tensor.Tensor) backend.Gemm { return engineGemm(t.Engine()) }

// engineGemm is e when it does matrix products, else gochat's own Go products.
func engineGemm(e tensor.Engine) backend.Gemm {
	if g, ok := e.(backend.Gemm); ok {
		return g
	}
	return goGemm{}
}

// goGemm is a matrix product with no engine: internal/sgemm in float32, gonum in float64.
type goGemm struct{}

func (goGemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (goGemm) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	op := map[bool]blas.Transpose{false: blas.NoTrans, true: blas.Trans}
	gonum.Implementation{}.Dgemm(op[transA], op[transB], m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemm calls the engine's Sgemm or Dgemm for T.
func gemm[T Float](e backend.Gemm, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch c := any(c).(type) {
	case []float32:
		e.Sgemm(transA, transB, m, n, k, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), c, ldc)
	case []float64:
		e.Dgemm(transA, transB, m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), c, ldc)
	}
}

// NewTensor returns a zeroed tensor of dt and shape on eng: in the engine's memory when eng
// is a backend.Memory and dt a type it makes.
func NewTensor(eng tensor.Engine, dt tensor.Dtype, shape ...int) *tensor.Dense {
	if d, ok := eng.(backend.Memory); ok && (dt == tensor.Float32 || dt == tensor.Int) {
		n := tensor.Shape(shape).TotalSize()
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d.Make(dt, n)), tensor.WithEngine(eng))
	}
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape...), tensor.WithEngine(eng))
}

// HostOps is the CPU's implementation of the ops' kernels: the Go kernels of this package, with
// the matrix products of the Gemm it holds. The CPU engine (cpubackend) is made of it.
type HostOps[T Float] struct {
	backend.Gemm
	scratch *sync.Pool // of *[]T: attention's score blocks, reused; nil allocates each time
}

// NewHostOps returns the host kernels over g, with reused scratch.
func NewHostOps[T Float](g backend.Gemm) HostOps[T] {
	return HostOps[T]{Gemm: g, scratch: &sync.Pool{}}
}

// Zero implements backend.KernelsOf: clear(x).
func (h HostOps[T]) Zero(x []T) { clear(x) }

// Copy implements backend.KernelsOf: copy(dst, src).
func (h HostOps[T]) Copy(dst, src []T) { copy(dst, src) }

// Scale implements backend.KernelsOf, split across the threads.
func (h HostOps[T]) Scale(x []T, a T) {
	parallel.For(len(x), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x[i] *= a
		}
	})
}

// AddForward implements backend.KernelsOf with this package's AddForward.
func (h HostOps[T]) AddForward(y, a, b []T) { AddForward(y, a, b) }

// EmbeddingForward panics on an id out of range: the op checks the ids before.
func (h HostOps[T]) EmbeddingForward(y, table []T, ids []int, width int) {
	if err := EmbeddingForward(y, table, ids, width); err != nil {
		panic(fmt.Sprintf("layers: unchecked ids: %v", err))
	}
}

// EmbeddingBackward implements backend.KernelsOf with this package's EmbeddingBackward.
func (h HostOps[T]) EmbeddingBackward(dtable, dy []T, ids []int, width int) {
	EmbeddingBackward(dtable, dy, ids, width)
}

// RMSNormForward implements backend.KernelsOf with this package's RMSNormForward.
func (h HostOps[T]) RMSNormForward(y, rstd, x []T, width, size, heads int) {
	RMSNormForward(y, rstd, x, width, size, heads)
}

// RMSNormBackward implements backend.KernelsOf with this package's RMSNormBackward.
func (h HostOps[T]) RMSNormBackward(dx, y, rstd, dy []T, width, size, heads int) {
	RMSNormBackward(dx, y, rstd, dy, width, size, heads)
}

// RotaryForward implements backend.KernelsOf with this package's RotaryForward.
func (h HostOps[T]) RotaryForward(y, x []T, width int, r backend.Rotation, inverse bool) {
	RotaryForward(y, x, width, r, inverse)
}

// ReLU2Forward implements backend.KernelsOf with this package's ReLU2Forward.
func (h HostOps[T]) ReLU2Forward(y, x []T) { ReLU2Forward(y, x) }

// ReLU2Backward implements backend.KernelsOf with this package's ReLU2Backward.
func (h HostOps[T]) ReLU2Backward(dx, y, dy []T) { ReLU2Backward(dx, y, dy) }

// SoftcapForward implements backend.KernelsOf with this package's SoftcapForward.
func (h HostOps[T]) SoftcapForward(y, x []T, cap T) { SoftcapForward(y, x, cap) }

// SoftcapBackward implements backend.KernelsOf with this package's SoftcapBackward.
func (h HostOps[T]) SoftcapBackward(dx, y, dy []T, cap T) {
	SoftcapBackward(dx, y, dy, cap)
}

// AttentionForward implements backend.KernelsOf with this package's AttentionForward on
// views of the fused layouts, with reused scratch.
func (h HostOps[T]) AttentionForward(s backend.AttnShape, qkv, y, lse []T) {
	q, k, v, out := AttnViews(s, qkv, y)
	h.attend(s, q, k, v, out, lse)
}

// attend is this package's AttentionForward over views, with reused scratch.
func (h HostOps[T]) attend(s backend.AttnShape, q, k, v, out View[T], lse []T) {
	scratch := h.take(AttnScratch(s))
	defer h.put(scratch)
	AttentionForward(h.Gemm, s, q, k, v, out, lse, *scratch)
}

// AttentionBackward implements backend.KernelsOf with this package's AttentionBackward on
// views of the fused layouts, with reused scratch.
func (h HostOps[T]) AttentionBackward(s backend.AttnShape, qkv, y, dy, dqkv, lse []T) {
	scratch := h.take(AttnScratch(s))
	defer h.put(scratch)
	q, k, v, yv := AttnViews(s, qkv, y)
	dq, dk, dv, dyv := AttnViews(s, dqkv, dy)
	AttentionBackward(h.Gemm, s, q, k, v, yv, dyv, dq, dk, dv, lse, *scratch)
}

// StoreKV implements backend.KernelsOf with this package's StoreKV.
func (h HostOps[T]) StoreKV(s backend.AttnShape, capacity int, qkv, k, v []T) {
	StoreKV(s, capacity, qkv, k, v)
}

// AttentionCached implements backend.KernelsOf with this package's AttentionForward on
// views of the new queries and the cache, with reused scratch.
func (h HostOps[T]) AttentionCached(s backend.AttnShape, capacity int, qkv, k, v, y, lse []T) {
	q, _, _, out := AttnViews(s, qkv, y)
	kc, vc := CacheViews(s, capacity, k, v)
	h.attend(s, q, kc, vc, out, lse)
}

// CrossEntropyForward panics on a target out of range: the op checks the targets before.
func (h HostOps[T]) CrossEntropyForward(losses, logits []T, targets []int, vocab int, cap T, grad, scale []T) {
	if err := CrossEntropyForward(losses, logits, targets, vocab, cap, grad, scale); err != nil {
		panic(fmt.Sprintf("layers: unchecked targets: %v", err))
	}
}

// AttentionWorkspace is the memory, in bytes, of the scratch the attention kernels take
// for s: one call's, which the host reuses.
func (h HostOps[T]) AttentionWorkspace(s backend.AttnShape) uint64 {
	var zero T
	return uint64(AttnScratch(s)) * uint64(unsafe.Sizeof(zero))
}

// take returns n elements of scratch: reused ones when the host keeps them.
func (h HostOps[T]) take(n int) *[]T {
	if h.scratch != nil {
		if s, ok := h.scratch.Get().(*[]T); ok && cap(*s) >= n {
			*s = (*s)[:n]
			return s
		}
	}
	s := make([]T, n)
	return &s
}

func (h HostOps[T]) put(s *[]T) {
	if h.scratch != nil {
		h.scratch.Put(s)
	}
}

// zero clears a float tensor with its engine's kernels.
func zero(t *tensor.Dense) {
	switch t.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](t).Zero(floats[float32](t))
	case tensor.Float64:
		kernelsOf[float64](t).Zero(floats[float64](t))
	}
}

// scaleBy multiplies a float tensor by x with its engine's kernels.
func scaleBy(t *tensor.Dense, x float64) {
	switch t.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](t).Scale(floats[float32](t), float32(x))
	case tensor.Float64:
		kernelsOf[float64](t).Scale(floats[float64](t), x)
	}
}

// copyRows copies src into dst from element at, with dst's engine's kernels.
func copyRows(dst *tensor.Dense, at int, src *tensor.Dense) {
	switch d := dst.Data().(type) {
	case []float32:
		s := floats[float32](src)
		kernelsOf[float32](dst).Copy(d[at:at+len(s)], s)
	case []float64:
		s := floats[float64](src)
		kernelsOf[float64](dst).Copy(d[at:at+len(s)], s)
	}
}

// Holder is an engine that says whether a slice is its memory.
type Holder interface{ Holds(x []float32) bool }

// DeviceAdd is tensor.Adder for an engine whose memory the host does not touch (a GPU's):
// the sums Gorgonia inserts where a value's gradients meet (the residual stream's).
// Float32 tensors of the engine add there with its AddForward kernel, into the tensor
// handed over for the result (the graph's planned memory), into the first operand when
// asked to, or else into a new tensor of the engine; tensors of the host add on the host
// with std once the engine is idle. Anything else is an error.
func DeviceAdd(e interface {
	backend.Backend
	Holder
}, std tensor.Adder, a, b tensor.Tensor, opts ...tensor.FuncOpt) (tensor.Tensor, error) {
	fo := tensor.ParseFuncOpts(opts...)
	resident := func(t tensor.Tensor) bool {
		d, ok := t.(*tensor.Dense)
		return ok && d.Dtype() == tensor.Float32 && !d.RequiresIterator() && e.Holds(d.Float32s())
	}
	out := a
	if reuse := fo.Reuse(); reuse != nil {
		out = reuse
	} else if fo.Safe() && resident(a) && resident(b) {
		out = NewTensor(e, tensor.Float32, a.Shape()...)
	}
	switch {
	case resident(a) && resident(b) && resident(out) && fo.Incr() == nil && a.Shape().Eq(b.Shape()) && a.Shape().Eq(out.Shape()):
		e.AddForward(out.Data().([]float32), a.Data().([]float32), b.Data().([]float32))
		return out, nil
	case resident(a) || resident(b) || resident(out):
		return nil, fmt.Errorf("%s: an addition of %v and %v it cannot do on the device", e.Name(), a.Shape(), b.Shape())
	}
	if err := e.Sync(); err != nil {
		return nil, err
	}
	return std.Add(a, b, opts...)
}
