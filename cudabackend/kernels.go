//go:build linux

package cudabackend

import (
	"fmt"
	"unsafe"

	"gochat/backend"
	"gochat/internal/arena"
	"gochat/layers"

	"gorgonia.org/tensor"
)

// The backend.Kernels and backend.OptimizerKernels methods: each locks the device, checks that its
// slices are the engine's memory, and queues the kernel of kernels.cu of the same name.

const rowThreads = 256 // threads of a row kernel's block

// Zero implements backend.Kernels: a memset of x on the device.
func (e *Engine) Zero(x []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.memset(e.ptr(x), 4*len(x))
}

// Copy implements backend.Kernels: a copy on the device; slices of different lengths are a
// failure for Sync to report.
func (e *Engine) Copy(dst, src []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	if len(dst) != len(src) {
		e.fail(fmt.Errorf("cuda: copy of %d floats into %d", len(src), len(dst)))
	}
	e.copyBytes(e.ptr(dst), e.ptr(src), 4*len(src))
}

// Scale implements backend.Kernels with an elementwise kernel.
func (e *Engine) Scale(x []float32, a float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("scale", len(x), x, len(x), a)
}

// AddForward implements backend.Kernels with an elementwise kernel over y.
func (e *Engine) AddForward(y, a, b []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("add", len(y), y, a[:len(y)], b[:len(y)], len(y))
}

// EmbeddingForward implements backend.Kernels: an elementwise gather of table's rows. The
// ids go unchecked: the op checks them before.
func (e *Engine) EmbeddingForward(y, table []float32, ids []int, width int) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("embeddingForward", len(ids)*width, y[:len(ids)*width], table, ids, len(ids), width)
}

// EmbeddingBackward implements backend.Kernels: dtable is cleared and dy's rows added into
// it atomically, so the order in which a repeated id's rows add up varies from run to run.
func (e *Engine) EmbeddingBackward(dtable, dy []float32, ids []int, width int) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.memset(e.ptr(dtable), 4*len(dtable))
	e.elementwise("embeddingBackward", len(ids)*width, dtable, dy[:len(ids)*width], ids, len(ids), width)
}

// RMSNormForward implements backend.Kernels: a warp per normalised chunk of a row (and
// one for the rest of a wider row), profiled apart for the residual stream's norms and the
// QK norms.
func (e *Engine) RMSNormForward(y, rstd, x []float32, width, size, heads int) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	rows := len(x) / width
	e.launchAs(normLabel("rmsNormForward", size, heads), "rmsNormForward", [2]int{normBlocks(rows, width, size, heads), 1}, rowThreads, 0,
		y[:len(x)], rstd, x, rows, width, size, heads, float32(layers.NormEps))
}

// RMSNormBackward implements backend.Kernels as RMSNormForward does.
func (e *Engine) RMSNormBackward(dx, y, rstd, dy []float32, width, size, heads int) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	rows := len(y) / width
	e.launchAs(normLabel("rmsNormBackward", size, heads), "rmsNormBackward", [2]int{normBlocks(rows, width, size, heads), 1}, rowThreads, 0,
		dx[:len(y)], y, rstd, dy[:len(y)], rows, width, size, heads)
}

// normBlocks is the grid of the norm kernels: a warp per chunk, as normChunk in
// kernels.cu counts them.
func normBlocks(rows, width, size, heads int) int {
	chunks := heads
	if width > heads*size {
		chunks++
	}
	return warpBlocks(rows * chunks)
}

// warpBlocks is the grid of a kernel that takes a warp for each of n items, in blocks of
// rowThreads.
func warpBlocks(n int) int {
	const warps = rowThreads / 32
	return (n + warps - 1) / warps
}

// normLabel tells the residual stream's norms from the QK norms in a profile.
func normLabel(name string, size, heads int) string {
	return fmt.Sprintf("%s (%d×%d)", name, heads, size)
}

// RotaryForward implements backend.Kernels: one block per row, with the cos and sin of
// r.Table uploaded to the device on the table's first use.
func (e *Engine) RotaryForward(y, x []float32, width int, r backend.Rotation, inverse bool) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	tables, ok := e.tables[r.Table]
	if !ok {
		cos, sin := r.Table.Float32()
		tables = [2]uintptr{e.upload(unsafe.Pointer(&cos[0]), 4*len(cos)), e.upload(unsafe.Pointer(&sin[0]), 4*len(sin))}
		e.tables[r.Table] = tables
	}
	var sign float32 = 1
	if inverse {
		sign = -1
	}
	e.launch("rotary", len(x)/width, rowThreads, y[:len(x)], x, width, r.SeqLen, r.Pos0, r.Heads, r.Table.HeadDim/2, tables[0], tables[1], sign)
}

// upload copies n bytes of host memory at p into new device memory that lives as long as
// the engine.
func (e *Engine) upload(p unsafe.Pointer, n int) uintptr {
	var d uintptr
	e.b.w.wait(func() {
		if code := e.b.rt.malloc(&d, uint64(n)); code != 0 {
			e.fail(fmt.Errorf("cudaMalloc: %s", e.b.rt.describe(code)))
			return
		}
		if code := e.b.rt.copyToDevice(d, p, uint64(n), cudaMemcpyHostToDev); code != 0 {
			e.fail(fmt.Errorf("copy to device: %s", e.b.rt.describe(code)))
		}
	})
	return d
}

// ReLU2Forward implements backend.Kernels with an elementwise kernel.
func (e *Engine) ReLU2Forward(y, x []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("relu2Forward", len(x), y[:len(x)], x, len(x))
}

// ReLU2Backward implements backend.Kernels with an elementwise kernel.
func (e *Engine) ReLU2Backward(dx, y, dy []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("relu2Backward", len(y), dx[:len(y)], y, dy[:len(y)], len(y))
}

// SoftcapForward implements backend.Kernels with an elementwise kernel.
func (e *Engine) SoftcapForward(y, x []float32, cap float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("softcapForward", len(x), y[:len(x)], x, len(x), cap)
}

// SoftcapBackward implements backend.Kernels with an elementwise kernel.
func (e *Engine) SoftcapBackward(dx, y, dy []float32, cap float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("softcapBackward", len(y), dx[:len(y)], y, dy[:len(y)], len(y), cap)
}

// CrossEntropyForward runs one block of 1024 threads per row of logits.
func (e *Engine) CrossEntropyForward(losses, logits []float32, targets []int, vocab int, cap float32, grad, scale []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	n := len(targets)
	if grad != nil {
		grad, scale = grad[:n*vocab], scale[:n]
	}
	e.launch("crossEntropy", n, 1024, losses[:n], logits[:n*vocab], targets, vocab, cap, grad, scale)
}

// MuonMomentum implements backend.OptimizerKernels with an elementwise kernel.
func (e *Engine) MuonMomentum(buf, g, upd []float32, mu float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("muonMomentum", len(buf), buf, g[:len(buf)], upd[:len(buf)], len(buf), mu)
}

// AdamW implements backend.OptimizerKernels with an elementwise kernel.
func (e *Engine) AdamW(p, g, m, v []float32, decay, lerp, beta2, step, invBC2, eps float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	n := len(p)
	e.elementwise("adamW", n, p, g[:n], m[:n], v[:n], n, decay, lerp, beta2, step, invBC2, eps)
}

// Axpy implements backend.OptimizerKernels with an elementwise kernel.
func (e *Engine) Axpy(y, x []float32, a float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("axpy", len(y), y, x[:len(y)], len(y), a)
}

// SumSquares implements backend.OptimizerKernels: the squares add up in float64 on the device, and
// the one result comes back.
func (e *Engine) SumSquares(xs [][]float32) (float64, error) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.memset(e.sumResult, 8)
	for _, x := range xs {
		e.elementwise("sumSquares", len(x), x, len(x), e.sumResult)
	}
	var ss float64
	e.b.w.wait(func() {
		if e.err() != nil {
			return
		}
		if code := e.b.rt.copyToHost(unsafe.Pointer(&ss), e.sumResult, 8, cudaMemcpyDevToHost); code != 0 {
			e.fail(fmt.Errorf("copy to host: %s", e.b.rt.describe(code)))
		}
		e.sync()
	})
	return ss, e.err()
}

// NewtonSchulz implements backend.OptimizerKernels: the matrices go, transposed when tall, into
// consecutive scratch X; their norms and every step run for all of them at once (batched
// products over the matrices, X' and B copied whole), and the results come back.
func (e *Engine) NewtonSchulz(out, g [][]float32, rows, cols, steps int, ca, cb, cc float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	for i0 := 0; i0 < len(g); i0 += nsBatch {
		i1 := min(i0+nsBatch, len(g))
		e.newtonSchulz(out[i0:i1], g[i0:i1], rows, cols, steps, ca, cb, cc)
	}
}

func (e *Engine) newtonSchulz(out, g [][]float32, rows, cols, steps int, ca, cb, cc float32) {
	r, c, count := rows, cols, len(g)
	if rows > cols {
		r, c = cols, rows
	}
	n, nn := r*c, r*r
	dX, dN := e.reserve(scratchX, uint64(f32*count*n)), e.reserve(scratchNext, uint64(f32*count*n))
	dA, dB := e.reserve(scratchA, uint64(f32*count*nn)), e.reserve(scratchB, uint64(f32*count*nn))
	at := func(base uintptr, i, size int) uintptr { return base + uintptr(f32*i*size) }
	for i := range g {
		if rows > cols {
			e.elementwise("transpose", n, at(dX, i, n), g[i][:n], rows, cols)
		} else {
			e.copyBytes(at(dX, i, n), e.ptr(g[i][:n]), f32*n)
		}
	}
	e.memset(e.sumResult, 8*count)
	e.launch2("sumSquares", n, count, dX, n, e.sumResult)
	e.launch2("normalise", n, count, dX, n, e.sumResult)
	each := func(x, y, z uintptr, sx, sy, sz int) batch {
		var bt batch
		for i := range count {
			bt.add(at(x, i, sx), at(y, i, sy), at(z, i, sz))
		}
		return bt
	}
	for range steps {
		e.batched("Newton-Schulz", false, true, r, r, c, 1, c, c, 0, r, each(dX, dX, dA, n, n, nn))      // A = X·Xᵀ
		e.copyBytes(dB, dA, f32*count*nn)                                                                // B = A
		e.batched("Newton-Schulz", false, false, r, r, r, cc, r, r, cb, r, each(dA, dA, dB, nn, nn, nn)) // B = cA·A + bB
		e.copyBytes(dN, dX, f32*count*n)                                                                 // X' = X
		e.batched("Newton-Schulz", false, false, r, c, r, 1, r, c, ca, c, each(dB, dX, dN, nn, n, n))    // X' = B·X + aX'
		dX, dN = dN, dX
	}
	for i := range out {
		if rows > cols {
			e.elementwise("transpose", n, out[i][:n], at(dX, i, n), r, c)
		} else {
			e.copyBytes(e.ptr(out[i][:n]), at(dX, i, n), f32*n)
		}
	}
}

// launch2 launches an elementwise kernel over count matrices of n elements each.
func (e *Engine) launch2(name string, n, count int, args ...any) {
	e.launchAs(name, name, [2]int{elementwiseBlocks(n), count}, 256, 0, args...)
}

// Add implements tensor.Adder: the sums Gorgonia inserts where a value's gradients meet
// add on the GPU (layers.DeviceAdd).
func (e *Engine) Add(a, b tensor.Tensor, opts ...tensor.FuncOpt) (tensor.Tensor, error) {
	return layers.DeviceAdd(e, e.StandardEngine, a, b, opts...)
}

// Holds implements layers.Holder: whether x lies in the engine's memory.
func (e *Engine) Holds(x []float32) bool {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	return arena.Holds(&e.memory, x)
}

// Interface checks.
var _ backend.Backend = (*Engine)(nil)
