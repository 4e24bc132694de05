// Package hostdevice is a backend.Backend that runs on the host like the CPU engine, but
// with its memory carved out of chunks of Go memory as an accelerator's is; its kernels are
// the CPU engine's. It lets the tests of this machine, which has no GPU,
// check what an accelerator engine depends on: that every op and every optimizer step hands
// its work to the device, that everything a kernel gets is the device's memory (a slice of
// other memory is reported by the next Sync, as a GPU engine reports it), and that the
// device paths of the graph and the optimizers compute what the CPU paths do. It counts the
// calls of each kernel.
package hostdevice

import (
	"fmt"
	"sync"
	"unsafe"

	"gochat/backend"
	"gochat/cpubackend"
	"gochat/internal/arena"

	"gorgonia.org/tensor"
)

// Device is the CPU engine over a BLAS, with a device's memory.
type Device struct {
	*cpubackend.Engine
	mu     sync.Mutex
	calls  map[string]int
	memory arena.Arena
	chunks [][]byte // the Go memory the arena carves, kept alive
	failed error
}

// New returns a device over blas.
func New(blas cpubackend.BLAS) *Device {
	d := &Device{Engine: cpubackend.New(blas), calls: map[string]int{}}
	d.memory = arena.Arena{MinChunk: 1 << 20, Align: 64, New: func(size uintptr) (arena.Chunk, error) {
		b := make([]byte, size+64)
		d.chunks = append(d.chunks, b)
		p := unsafe.Pointer(&b[0])
		return arena.Chunk{Base: unsafe.Add(p, (64-uintptr(p)%64)%64), Size: size}, nil
	}}
	return d
}

// Calls returns how many times each kernel ran, and starts counting again.
func (d *Device) Calls() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = map[string]int{}
	return c
}

// count records a call of kernel and checks that its slices ([]float32, []int or []int8)
// are the device's memory.
func (d *Device) count(kernel string, slices ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[kernel]++
	for _, x := range slices {
		held := true
		switch x := x.(type) {
		case []float32:
			held = arena.Holds(&d.memory, x)
		case []int:
			held = arena.Holds(&d.memory, x)
		case []int8:
			held = arena.Holds(&d.memory, x)
		}
		if !held && d.failed == nil {
			d.failed = fmt.Errorf("hostdevice: %s got a slice that is not the device's memory", kernel)
		}
	}
}

// Make implements backend.Memory.
func (d *Device) Make(dt tensor.Dtype, n int) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.memory.Alloc(uintptr(max(n, 1)) * uintptr(dt.Size()))
	if err != nil {
		panic(err)
	}
	return arena.Typed(p, dt, n)
}

// Sync implements backend.Memory: it reports the first slice a kernel got from elsewhere.
func (d *Device) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.failed
	d.failed = nil
	return err
}

// Zero implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) Zero(x []float32) { d.count("Zero", x); d.Engine.Zero(x) }

// Copy implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) Copy(dst, src []float32) { d.count("Copy", dst, src); d.Engine.Copy(dst, src) }

// Scale implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) Scale(x []float32, a float32) { d.count("Scale", x); d.Engine.Scale(x, a) }

// AddForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AddForward(y, a, b []float32) {
	d.count("AddForward", y, a, b)
	d.Engine.AddForward(y, a, b)
}

// EmbeddingForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) EmbeddingForward(y, table []float32, ids []int, width int) {
	d.count("EmbeddingForward", y, table, ids)
	d.Engine.EmbeddingForward(y, table, ids, width)
}

// EmbeddingBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) EmbeddingBackward(dtable, dy []float32, ids []int, width int) {
	d.count("EmbeddingBackward", dtable, dy, ids)
	d.Engine.EmbeddingBackward(dtable, dy, ids, width)
}

// RMSNormForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) RMSNormForward(y, rstd, x []float32, width, size, heads int) {
	d.count("RMSNormForward", y, rstd, x)
	d.Engine.RMSNormForward(y, rstd, x, width, size, heads)
}

// RMSNormBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) RMSNormBackward(dx, y, rstd, dy []float32, width, size, heads int) {
	d.count("RMSNormBackward", dx, y, rstd, dy)
	d.Engine.RMSNormBackward(dx, y, rstd, dy, width, size, heads)
}

// RotaryForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) RotaryForward(y, x []float32, width int, r backend.Rotation, inverse bool) {
	d.count("RotaryForward", y, x)
	d.Engine.RotaryForward(y, x, width, r, inverse)
}

// ReLU2Forward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) ReLU2Forward(y, x []float32) {
	d.count("ReLU2Forward", y, x)
	d.Engine.ReLU2Forward(y, x)
}

// ReLU2Backward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) ReLU2Backward(dx, y, dy []float32) {
	d.count("ReLU2Backward", dx, y, dy)
	d.Engine.ReLU2Backward(dx, y, dy)
}

// SoftcapForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) SoftcapForward(y, x []float32, cap float32) {
	d.count("SoftcapForward", y, x)
	d.Engine.SoftcapForward(y, x, cap)
}

// SoftcapBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) SoftcapBackward(dx, y, dy []float32, cap float32) {
	d.count("SoftcapBackward", dx, y, dy)
	d.Engine.SoftcapBackward(dx, y, dy, cap)
}

// AttentionForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AttentionForward(s backend.AttnShape, qkv, y, lse []float32) {
	d.count("AttentionForward", qkv, y, lse)
	d.Engine.AttentionForward(s, qkv, y, lse)
}

// AttentionBackward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AttentionBackward(s backend.AttnShape, qkv, y, dy, dqkv, lse []float32) {
	d.count("AttentionBackward", qkv, y, dy, dqkv, lse)
	d.Engine.AttentionBackward(s, qkv, y, dy, dqkv, lse)
}

// StoreKV implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) StoreKV(s backend.AttnShape, capacity int, qkv, k, v []float32) {
	d.count("StoreKV", qkv, k, v)
	d.Engine.StoreKV(s, capacity, qkv, k, v)
}

// AttentionCached implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) AttentionCached(s backend.AttnShape, capacity int, qkv, k, v, y, lse []float32) {
	d.count("AttentionCached", qkv, k, v, y, lse)
	d.Engine.AttentionCached(s, capacity, qkv, k, v, y, lse)
}

// MulQ8T implements backend.Int8Kernels: counted and checked, then the CPU engine's.
func (d *Device) MulQ8T(n int, x []float32, q []int8, scale []float32, y []float32) {
	d.count("MulQ8T", x, q, scale, y)
	d.Engine.MulQ8T(n, x, q, scale, y)
}

// CrossEntropyForward implements backend.Kernels: counted and checked, then the CPU engine's.
func (d *Device) CrossEntropyForward(losses, logits []float32, targets []int, vocab int, cap float32, grad, scale []float32) {
	d.count("CrossEntropyForward", losses, logits, targets, grad, scale)
	d.Engine.CrossEntropyForward(losses, logits, targets, vocab, cap, grad, scale)
}

// MuonMomentum implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) MuonMomentum(buf, g, upd []float32, mu float32) {
	d.count("MuonMomentum", buf, g, upd)
	d.Engine.MuonMomentum(buf, g, upd, mu)
}

// NewtonSchulz implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) NewtonSchulz(out, g [][]float32, rows, cols, steps int, a, b, c float32) {
	var slices []any
	for i := range g {
		slices = append(slices, out[i], g[i])
	}
	d.count("NewtonSchulz", slices...)
	d.Engine.NewtonSchulz(out, g, rows, cols, steps, a, b, c)
}

// AdamW implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) AdamW(p, g, m, v []float32, decay, lerp, beta2, step, invBC2, eps float32) {
	d.count("AdamW", p, g, m, v)
	d.Engine.AdamW(p, g, m, v, decay, lerp, beta2, step, invBC2, eps)
}

// Axpy implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) Axpy(y, x []float32, a float32) {
	d.count("Axpy", y, x)
	d.Engine.Axpy(y, x, a)
}

// SumSquares implements backend.OptimizerKernels: counted and checked, then the CPU engine's.
func (d *Device) SumSquares(xs [][]float32) (float64, error) {
	slices := make([]any, len(xs))
	for i, x := range xs {
		slices[i] = x
	}
	d.count("SumSquares", slices...)
	return d.Engine.SumSquares(xs)
}
