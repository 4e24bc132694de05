// Package backend is the contract between gochat's model and the engines that compute it:
// what an engine is (Backend: Gorgonia's tensor.Engine, matrix products, memory, and the
// float32 kernels of every op and optimizer step), the shapes those kernels take, and the
// registry that opens an engine by name.
//
// The engines live beside it, each in a folder of its own, as the project's layout fixes
// them: cpubackend (the CPU: a BLAS for the products, the Go kernels of layers and
// optimizers for the rest), cudabackend (NVIDIA GPUs) and metalbackend (Apple silicon). Each
// registers itself; none imports another. The model (layers, graph, optimizers, train)
// imports this package and no engine: it calls the kernels of whatever engine its tensors
// live on, and the Go kernels are simply the CPU engine's.
package backend

import (
	"fmt"

	"gorgonia.org/tensor"
)

// Gemm is the matrix product every engine offers: row-major
// C = alpha·op(A)·op(B) + beta·C, op transposing its operand when the flag is set, with row
// strides lda, ldb, ldc of the matrices as stored.
type Gemm interface {
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

// Memory is where an engine keeps its tensors: Go's memory for the CPU, an accelerator's
// for the others. Ops make their outputs, and graphs their parameters and inputs, with Make.
//
// Work on that memory may be queued: the host may read or write a tensor only after Sync,
// which also reports the first failure of the queued work. graph.Model.Run and the
// optimizers' steps end with a Sync. Where the engine's memory is not the host's at all (a
// Remote: a GPU's own), the host reads and writes it only by copying: Read, Write and
// Readable say how for any engine.
type Memory interface {
	// Make returns n zeroed elements of dt (tensor.Float32, tensor.Int or tensor.Int8) in
	// the engine's memory, as []float32, []int or []int8. The memory lives as long as the engine.
	Make(dt tensor.Dtype, n int) any
	// Sync waits for the queued work and returns its first failure.
	Sync() error
}

// Remote is a Memory the host cannot address (a GPU's own memory): the slices Make returns
// only name it, and the host touches what they hold through these copies alone.
type Remote interface {
	Memory
	// CopyToHost copies src, the engine's memory, into dst, the host's, once the work
	// queued before it is done, and returns that work's first failure, as Sync does. The
	// two are []float32, []int or []int8 of one type and length.
	CopyToHost(dst, src any) error
	// CopyFromHost copies src, the host's memory, into dst, the engine's, after the work
	// queued before it, which may still read dst; src may change once it returns.
	CopyFromHost(dst, src any) error
}

// Read copies src, in e's memory, into dst, the host's: through e's copy on a Remote
// engine, else after e's queued work.
func Read[T any](e any, dst, src []T) error {
	return transfer(e, dst, src, "reading", Remote.CopyToHost)
}

// Write copies src, the host's memory, into dst, in e's: through e's copy on a Remote
// engine, else after e's queued work (which may still read dst).
func Write[T any](e any, dst, src []T) error {
	return transfer(e, dst, src, "writing", Remote.CopyFromHost)
}

// transfer is Read's and Write's copy: remote's on a Remote engine, else Go's after e's
// queued work.
func transfer[T any](e any, dst, src []T, what string, remote func(Remote, any, any) error) error {
	if len(dst) != len(src) {
		return fmt.Errorf("backend: %s %d elements into %d", what, len(src), len(dst))
	}
	if r, ok := e.(Remote); ok {
		return remote(r, dst, src)
	}
	if err := syncOf(e); err != nil {
		return err
	}
	copy(dst, src)
	return nil
}

// Readable returns x, in e's memory, where the host may read it: x itself once e's queued
// work is done, or on a Remote engine a copy in Go memory.
func Readable[T any](e any, x []T) ([]T, error) {
	if _, ok := e.(Remote); !ok {
		return x, syncOf(e)
	}
	h := make([]T, len(x))
	return h, Read(e, h, x)
}

// syncOf waits for e's queued work when e is a Memory.
func syncOf(e any) error {
	if m, ok := e.(Memory); ok {
		return m.Sync()
	}
	return nil
}

// OutOfMemory is what an engine's Make panics with when its device's memory is spent, as
// Make has no error to return; the commands recover it as their error.
type OutOfMemory struct{ Err error }

// Error names what was refused and how to ask for less.
func (o OutOfMemory) Error() string {
	return o.Err.Error() + ": lower --device-batch-size (the total batch stays, in more micro-batches) or the rows asked for"
}

// Unwrap gives the engine's own error.
func (o OutOfMemory) Unwrap() error { return o.Err }

// Float is the element type of the kernels: float32 on every engine, float64 on the host
// for the gradient checks.
type Float interface{ ~float32 | ~float64 }

// KernelsOf are the kernels of the ops in T. Each computes what the Go kernel of the same
// name in layers does (the CPU engine's are those); the attention and cross-entropy kernels
// take whole fused layouts and need no scratch from the caller. The slices must be the
// engine's memory.
type KernelsOf[T Float] interface {
	Zero(x []T)
	Copy(dst, src []T)
	Scale(x []T, a T)
	AddForward(y, a, b []T)
	EmbeddingForward(y, table []T, ids []int, width int)
	EmbeddingBackward(dtable, dy []T, ids []int, width int)
	RMSNormForward(y, rstd, x []T, width, size, heads int)
	RMSNormBackward(dx, y, rstd, dy []T, width, size, heads int)
	RotaryForward(y, x []T, width int, r Rotation, inverse bool)
	ReLU2Forward(y, x []T)
	ReLU2Backward(dx, y, dy []T)
	SoftcapForward(y, x []T, cap T)
	SoftcapBackward(dx, y, dy []T, cap T)
	// AttentionForward takes q|k|v fused as the graph's Attention op does, y (B·T, H·D) and
	// lse (B, H, T); Tq must equal Tk.
	AttentionForward(s AttnShape, qkv, y, lse []T)
	AttentionBackward(s AttnShape, qkv, y, dy, dqkv, lse []T)
	// StoreKV copies the keys and values of the Tq new positions of each row of q|k|v
	// (Batch·Tq rows, as AttentionForward takes them) into a KV cache's k and v, laid out
	// (Batch, KVHeads, capacity, HeadDim), at positions Tk−Tq to Tk−1.
	StoreKV(s AttnShape, capacity int, qkv, k, v []T)
	// AttentionCached attends the Tq new queries of each row of q|k|v to the first Tk
	// positions of a KV cache laid out as StoreKV's (the new ones stored): y (Batch·Tq,
	// Heads·HeadDim) and lse (Batch, Heads, Tq).
	AttentionCached(s AttnShape, capacity int, qkv, k, v, y, lse []T)
	CrossEntropyForward(losses, logits []T, targets []int, vocab int, cap T, grad, scale []T)
}

// Kernels are the float32 kernels of the ops, which every engine runs.
type Kernels = KernelsOf[float32]

// Int8Kernels multiply by matrices of 8-bit integers with a scale per row, the layout of
// sgemm.Q8 (row j stands for scale[j]·q[j,:]): generation's quantized weights, of which a
// decoded token reads a quarter of the bytes. The slices must be the engine's memory.
type Int8Kernels interface {
	// MulQ8T sets y (n×rows) = x (n×cols)·wᵀ for the matrix w (rows×cols) that q and scale
	// stand for; rows is len(scale).
	MulQ8T(n int, x []float32, q []int8, scale []float32, y []float32)
}

// OptimizerKernels are the float32 kernels of the optimizers' steps, over the engine's
// memory, queued like the ops' kernels.
type OptimizerKernels interface {
	// MuonMomentum sets buf ← lerp(buf, g, 1−mu) and then upd ← lerp(g, buf, mu); upd may
	// be g.
	MuonMomentum(buf, g, upd []float32, mu float32)
	// NewtonSchulz writes into each out[i] (rows×cols) what optimizers.NewtonSchulz computes
	// for g[i] with the given steps and coefficients, all the matrices at once; out[i] may be
	// g[i].
	NewtonSchulz(out, g [][]float32, rows, cols, steps int, a, b, c float32)
	// AdamW updates p, m and v for gradient g: m ← m + lerp·(g − m),
	// v ← beta2·v + (1 − beta2)·g², p ← p·decay − step·m / (√v·invBC2 + eps).
	AdamW(p, g, m, v []float32, decay, lerp, beta2, step, invBC2, eps float32)
	// Axpy sets y ← y + a·x.
	Axpy(y, x []float32, a float32)
	// SumSquares waits for the queued work and returns Σx² over all of xs, in float64.
	SumSquares(xs [][]float32) (float64, error)
}

// Backend is an engine: it holds the tensors of Gorgonia's graphs (tensor.Engine, Memory)
// and computes everything a training step and a forward pass need on them.
type Backend interface {
	tensor.Engine
	Gemm
	Memory
	Kernels
	Int8Kernels
	OptimizerKernels
	Name() string
}

// DeviceMemory is a backend that says how much of its device's memory it has taken: its
// tensors and its own scratch.
type DeviceMemory interface {
	DeviceBytes() uint64
}

// Budget is a backend that can say, before anything is allocated, how much memory it may
// take and how much scratch of its own a training step needs: what a run plans against.
type Budget interface {
	// MemoryLimit is the most memory, in bytes, the engine's tensors and scratch may take
	// (the machine's memory, the GPU's free memory, Metal's recommended working set), or 0
	// when it cannot be read.
	MemoryLimit() uint64
	// Workspace is the most scratch of its own, in bytes, the engine takes for w.
	Workspace(w Workload) uint64
}

// Workload is what a training step asks of an engine besides the graph's tensors, for
// Budget.Workspace.
type Workload struct {
	Attention AttnShape     // the training graph's attention
	Matrices  []MatrixGroup // what Newton-Schulz orthogonalises, by shape
	Operand   int           // elements of the largest operand of one matrix product
}

// MatrixGroup is Count matrices of Rows×Cols.
type MatrixGroup struct{ Rows, Cols, Count int }

// Profiler is a backend that can time the work it queues on its device, by kind of work
// (its kernels' and libraries' names).
type Profiler interface {
	StartProfile()
	// StopProfile waits for the device and returns the time of the work queued since
	// StartProfile.
	StopProfile() (map[string]KernelTime, error)
}

// KernelTime is the device time of one kind of work.
type KernelTime struct {
	Calls   int
	Seconds float64
}
