// Package hostdevice is a backend.Backend that runs on the host like the CPU engine, but
// with memory of its own as a GPU's is; its kernels are the CPU engine's. It lets the tests
// of this machine, which has no GPU, check what a GPU engine depends on: that every op and
// every optimizer step hands its work to the device, that everything a kernel gets is the
// device's memory (a slice of other memory is reported by the next Sync, as a GPU engine
// reports it), that the host touches that memory only through the copies of
// backend.Remote (outside a kernel or a copy the memory is unreadable: a read faults, as
// the host's read of a GPU's memory would), and that the device paths of the graph and the
// optimizers compute what the CPU paths do. It counts the calls of each kernel.
package hostdevice

import (
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"gochat/backend"
	"gochat/cpubackend"
	"gochat/internal/arena"
	"gochat/layers"

	"gorgonia.org/tensor"
)

// Device is the CPU engine over a BLAS, with a device's memory.
type Device struct {
	*cpubackend.Engine
	mu     sync.Mutex
	calls  map[string]int
	memory arena.Arena
	chunks [][]byte // the mapped memory the arena carves
	// The memory is readable from a kernel's start (open) to the next Sync or copy after
	// which no kernel runs (running 0): the host reads a device's memory only after one,
	// and toggling it at every kernel would cost two system calls each.
	open    bool
	running int  // kernels and copies under way
	sealing bool // a Sync came while kernels ran: close the memory when the last ends
	failed  error
}

// New returns a device over blas.
func New(blas cpubackend.BLAS) *Device {
	d := &Device{Engine: cpubackend.New(blas), calls: map[string]int{}}
	d.memory = arena.Arena{MinChunk: 64 << 20, Align: 64, New: d.newChunk}
	return d
}

// newChunk maps size bytes of zeros for the arena, unreadable unless a kernel or a copy is
// under way; the caller holds d.mu.
func (d *Device) newChunk(size uintptr) (arena.Chunk, error) {
	b, err := syscall.Mmap(-1, 0, int(size), d.protection(), syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return arena.Chunk{}, fmt.Errorf("hostdevice: mapping %d bytes: %w", size, err)
	}
	d.chunks = append(d.chunks, b)
	return arena.Chunk{Base: unsafe.Pointer(&b[0]), Size: size}, nil
}

// protection is what the host may do with the memory now; the caller holds d.mu.
func (d *Device) protection() int {
	if d.open {
		return syscall.PROT_READ | syscall.PROT_WRITE
	}
	return syscall.PROT_NONE
}

// enter records a call of kernel, checks that its slices ([]float32, []int or []int8) are
// the device's memory, and opens the memory to the host; the function it returns ends the
// call.
func (d *Device) enter(kernel string, slices ...any) (exit func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[kernel]++
	for _, x := range slices {
		if !d.holds(x) && d.failed == nil {
			d.failed = fmt.Errorf("hostdevice: %s got a slice that is not the device's memory", kernel)
		}
	}
	d.running++
	if !d.open {
		d.open = true
		d.protect()
	}
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.running--; d.running == 0 && d.sealing {
			d.seal()
		}
	}
}

// seal closes the memory to the host, or has the last kernel under way close it; the
// caller holds d.mu.
func (d *Device) seal() {
	if d.running > 0 {
		d.sealing = true
		return
	}
	d.sealing = false
	if d.open {
		d.open = false
		d.protect()
	}
}

// protect sets every chunk's protection to what it is now; the caller holds d.mu.
func (d *Device) protect() {
	for _, b := range d.chunks {
		if err := syscall.Mprotect(b, d.protection()); err != nil {
			panic(fmt.Sprintf("hostdevice: mprotect: %v", err)) // the tests' own machinery failed
		}
	}
}

// holds reports whether x, a []float32, []int or []int8, lies in the device's memory; the
// caller holds d.mu.
func (d *Device) holds(x any) bool {
	switch x := x.(type) {
	case []float32:
		return arena.Holds(&d.memory, x)
	case []int:
		return arena.Holds(&d.memory, x)
	case []int8:
		return arena.Holds(&d.memory, x)
	}
	return true
}

// CopyToHost implements backend.Remote.
func (d *Device) CopyToHost(dst, src any) error {
	if err := d.transfer("CopyToHost", dst, src, src); err != nil {
		return err
	}
	return d.Sync()
}

// CopyFromHost implements backend.Remote.
func (d *Device) CopyFromHost(dst, src any) error {
	err := d.transfer("CopyFromHost", dst, src, dst)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seal()
	return err
}

// transfer copies src into dst, of which device is the device's.
func (d *Device) transfer(name string, dst, src, device any) error {
	to, from, n, err := arena.Pair(dst, src)
	if err != nil {
		return fmt.Errorf("hostdevice: %s: %w", name, err)
	}
	d.mu.Lock()
	held := d.holds(device)
	d.mu.Unlock()
	if !held {
		return fmt.Errorf("hostdevice: %s of memory that is not the device's", name)
	}
	if n > 0 {
		defer d.enter(name)()
		copy(unsafe.Slice((*byte)(to), n), unsafe.Slice((*byte)(from), n))
	}
	return nil
}

// Name implements backend.Backend.
func (d *Device) Name() string { return "hostdevice(" + d.Engine.BLAS.Name() + ")" }

// String is Name.
func (d *Device) String() string { return d.Name() }

// Calls returns how many times each kernel ran, and starts counting again.
func (d *Device) Calls() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = map[string]int{}
	return c
}

// DeviceBytes implements backend.DeviceMemory: the memory mapped for the device.
func (d *Device) DeviceBytes() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return uint64(d.memory.Total())
}

// Make implements backend.Memory.
func (d *Device) Make(dt tensor.Dtype, n int) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.memory.Alloc(uintptr(max(n, 1)) * uintptr(dt.Size())) // mapped memory is zeros
	if err != nil {
		panic(err)
	}
	return arena.Typed(p, dt, n)
}

// Sync implements backend.Memory: it closes the memory to the host and reports the first
// slice a kernel got from elsewhere.
func (d *Device) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seal()
	err := d.failed
	d.failed = nil
	return err
}

// Holds implements layers.Holder.
func (d *Device) Holds(x []float32) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return arena.Holds(&d.memory, x)
}

// Add implements tensor.Adder as a GPU engine does (layers.DeviceAdd).
func (d *Device) Add(a, b tensor.Tensor, opts ...tensor.FuncOpt) (tensor.Tensor, error) {
	return layers.DeviceAdd(d, d.Engine, a, b, opts...)
}

// Sgemm implements backend.Gemm: checked, then the CPU engine's. Its operands may be the
// host's (a product of the generation model before it is placed), but not some of each.
func (d *Device) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if d.Holds(a) || d.Holds(b) || d.Holds(c) {
		defer d.enter("Sgemm", a, b, c)()
	}
	d.Engine.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Zero implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) Zero(x []float32) { defer d.enter("Zero", x)(); d.Engine.Zero(x) }

// Copy implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) Copy(dst, src []float32) { defer d.enter("Copy", dst, src)(); d.Engine.Copy(dst, src) }

// Scale implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) Scale(x []float32, a float32) { defer d.enter("Scale", x)(); d.Engine.Scale(x, a) }

// AddForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AddForward(y, a, b []float32) {
	defer d.enter("AddForward", y, a, b)()
	d.Engine.AddForward(y, a, b)
}

// EmbeddingForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) EmbeddingForward(y, table []float32, ids []int, width int) {
	defer d.enter("EmbeddingForward", y, table, ids)()
	d.Engine.EmbeddingForward(y, table, ids, width)
}

// EmbeddingBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) EmbeddingBackward(dtable, dy []float32, ids []int, width int) {
	defer d.enter("EmbeddingBackward", dtable, dy, ids)()
	d.Engine.EmbeddingBackward(dtable, dy, ids, width)
}

// RMSNormForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) RMSNormForward(y, rstd, x []float32, width, size, heads int) {
	defer d.enter("RMSNormForward", y, rstd, x)()
	d.Engine.RMSNormForward(y, rstd, x, width, size, heads)
}

// RMSNormBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) RMSNormBackward(dx, y, rstd, dy []float32, width, size, heads int) {
	defer d.enter("RMSNormBackward", dx, y, rstd, dy)()
	d.Engine.RMSNormBackward(dx, y, rstd, dy, width, size, heads)
}

// RotaryForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) RotaryForward(y, x []float32, width int, r backend.Rotation, inverse bool) {
	defer d.enter("RotaryForward", y, x)()
	d.Engine.RotaryForward(y, x, width, r, inverse)
}

// ReLU2Forward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) ReLU2Forward(y, x []float32) {
	defer d.enter("ReLU2Forward", y, x)()
	d.Engine.ReLU2Forward(y, x)
}

// ReLU2Backward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) ReLU2Backward(dx, y, dy []float32) {
	defer d.enter("ReLU2Backward", dx, y, dy)()
	d.Engine.ReLU2Backward(dx, y, dy)
}

// SoftcapForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) SoftcapForward(y, x []float32, cap float32) {
	defer d.enter("SoftcapForward", y, x)()
	d.Engine.SoftcapForward(y, x, cap)
}

// SoftcapBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) SoftcapBackward(dx, y, dy []float32, cap float32) {
	defer d.enter("SoftcapBackward", dx, y, dy)()
	d.Engine.SoftcapBackward(dx, y, dy, cap)
}

// AttentionForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AttentionForward(s backend.AttnShape, qkv, y, lse []float32) {
	defer d.enter("AttentionForward", qkv, y, lse)()
	d.Engine.AttentionForward(s, qkv, y, lse)
}

// AttentionBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AttentionBackward(s backend.AttnShape, qkv, y, dy, dqkv, lse []float32) {
	defer d.enter("AttentionBackward", qkv, y, dy, dqkv, lse)()
	d.Engine.AttentionBackward(s, qkv, y, dy, dqkv, lse)
}

// StoreKV implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) StoreKV(s backend.AttnShape, capacity int, qkv, k, v []float32) {
	defer d.enter("StoreKV", qkv, k, v)()
	d.Engine.StoreKV(s, capacity, qkv, k, v)
}

// AttentionCached implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AttentionCached(s backend.AttnShape, capacity int, qkv, k, v, y, lse []float32) {
	defer d.enter("AttentionCached", qkv, k, v, y, lse)()
	d.Engine.AttentionCached(s, capacity, qkv, k, v, y, lse)
}

// MulQ8T implements backend.Int8Kernels: counted and checked, then the CPU engine's.
func (d *Device) MulQ8T(n int, x []float32, q []int8, scale []float32, y []float32) {
	defer d.enter("MulQ8T", x, q, scale, y)()
	d.Engine.MulQ8T(n, x, q, scale, y)
}

// CrossEntropyForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) CrossEntropyForward(losses, logits []float32, targets []int, vocab int, cap float32, grad, scale []float32) {
	defer d.enter("CrossEntropyForward", losses, logits, targets, grad, scale)()
	d.Engine.CrossEntropyForward(losses, logits, targets, vocab, cap, grad, scale)
}

// MuonMomentum implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) MuonMomentum(buf, g, upd []float32, mu float32) {
	defer d.enter("MuonMomentum", buf, g, upd)()
	d.Engine.MuonMomentum(buf, g, upd, mu)
}

// NewtonSchulz implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) NewtonSchulz(out, g [][]float32, rows, cols, steps int, a, b, c float32) {
	var slices []any
	for i := range g {
		slices = append(slices, out[i], g[i])
	}
	defer d.enter("NewtonSchulz", slices...)()
	d.Engine.NewtonSchulz(out, g, rows, cols, steps, a, b, c)
}

// AdamW implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) AdamW(p, g, m, v []float32, decay, lerp, beta2, step, invBC2, eps float32) {
	defer d.enter("AdamW", p, g, m, v)()
	d.Engine.AdamW(p, g, m, v, decay, lerp, beta2, step, invBC2, eps)
}

// Axpy implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) Axpy(y, x []float32, a float32) {
	defer d.enter("Axpy", y, x)()
	d.Engine.Axpy(y, x, a)
}

// SumSquares implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) SumSquares(xs [][]float32) (float64, error) {
	slices := make([]any, len(xs))
	for i, x := range xs {
		slices[i] = x
	}
	defer d.enter("SumSquares", slices...)()
	return d.Engine.SumSquares(xs)
}
