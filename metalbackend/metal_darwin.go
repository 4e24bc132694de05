//go:build darwin && arm64

package metalbackend

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"gochat/backend"
	"gochat/internal/arena"
	"gochat/layers"
	"gochat/optimizers"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var sel = objc.RegisterName

func class(name string) objc.ID { return objc.ID(objc.GetClass(name)) }

// BLAS runs large float32 products with MPS, staging operands of other memory in a shared
// buffer; the others, and float64, run on the host engine.
type BLAS struct {
	cpu    backend.Backend
	device objc.ID
	queue  objc.ID
	name   string
	min    int // the threshold, MinFLOPs unless GOCHAT_METAL_MIN_FLOPS says otherwise

	mu      sync.Mutex // one product at a time
	staging objc.ID    // a shared buffer holding the three operands of a product
	size    int        // its length in bytes
	failed  error      // the first failure; after it every product runs on the CPU
	engine  *Engine    // made by Engine on first use
}

// Load opens the system's default Metal device. Products below MinFLOPs, and every float64
// product, go to cpu.
func Load(cpu backend.Backend) (*BLAS, error) {
	metal, err := purego.Dlopen("/System/Library/Frameworks/Metal.framework/Metal", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("no Metal framework: %w", err)
	}
	if _, err := purego.Dlopen("/System/Library/Frameworks/MetalPerformanceShaders.framework/MetalPerformanceShaders", purego.RTLD_NOW|purego.RTLD_GLOBAL); err != nil {
		return nil, fmt.Errorf("no MetalPerformanceShaders framework: %w", err)
	}
	min, err := minFLOPs(os.Getenv("GOCHAT_METAL_MIN_FLOPS"))
	if err != nil {
		return nil, err
	}
	var createDevice func() objc.ID
	purego.RegisterLibFunc(&createDevice, metal, "MTLCreateSystemDefaultDevice")
	b := &BLAS{cpu: cpu, device: createDevice(), min: min}
	if b.device == 0 {
		return nil, fmt.Errorf("no Metal device")
	}
	b.queue = b.device.Send(sel("newCommandQueue"))
	if b.queue == 0 {
		return nil, fmt.Errorf("metal: no command queue")
	}
	b.name = "metal:" + goString(b.device.Send(sel("name")))
	return b, nil
}

// goString reads an NSString.
func goString(s objc.ID) string {
	p := objc.Send[*byte](s, sel("UTF8String"))
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// Name names the device.
func (b *BLAS) Name() string { return fmt.Sprintf("%s (small products on %s)", b.name, b.cpu.Name()) }

// Dgemm runs on the host: MPS has no float64 products.
func (b *BLAS) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, bm []float64, ldb int, beta float64, c []float64, ldc int) {
	b.cpu.Dgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// Sgemm is the row-major C = alpha·op(A)·op(B) + beta·C, with MPS from
// MinFLOPs on.
func (b *BLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	p, err := planGemm(transA, transB, m, n, k, lda, ldb, ldc)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil && worth(m, n, k, b.min) && b.failed == nil {
		if b.failed = b.run(p, alpha, a, bm, beta, c); b.failed == nil {
			return
		}
		fmt.Fprintf(os.Stderr, "gochat: metal: %v; the products run on the CPU from now on\n", b.failed)
	}
	b.cpu.Sgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// run stages the operands in the shared buffer, multiplies there and copies C back.
func (b *BLAS) run(p plan, alpha float32, a, bm []float32, beta float32, c []float32) error {
	if need := grow(b.size, p.Bytes, os.Getpagesize()); need != b.size {
		if b.staging != 0 {
			b.staging.Send(sel("release"))
		}
		b.staging = b.device.Send(sel("newBufferWithLength:options:"), uintptr(need), uintptr(0)) // storage mode shared
		if b.staging == 0 {
			b.size = 0
			return fmt.Errorf("cannot allocate a %d-byte buffer", need)
		}
		b.size = need
	}
	base := objc.Send[unsafe.Pointer](b.staging, sel("contents"))
	view := func(o operand) []float32 { return unsafe.Slice((*float32)(unsafe.Add(base, o.Offset)), o.Elems) }
	copy(view(p.A), a[:p.A.Elems])
	copy(view(p.B), bm[:p.B.Elems])
	copy(view(p.C), c[:p.C.Elems]) // beta·C, and the gaps between C's rows, which come back as they were
	if err := b.multiply(p, alpha, beta, [3]objc.ID{b.staging, b.staging, b.staging}); err != nil {
		return err
	}
	copy(c[:p.C.Elems], view(p.C))
	return nil
}

// multiply encodes one MPSMatrixMultiplication of p's operands, each in its buffer at its
// offset, and waits for it.
func (b *BLAS) multiply(p plan, alpha, beta float32, buffers [3]objc.ID) error {
	runtime.LockOSThread() // the autorelease pool belongs to this thread
	defer runtime.UnlockOSThread()
	pool := class("NSAutoreleasePool").Send(sel("new"))
	defer pool.Send(sel("drain"))

	matrix := func(o operand, buffer objc.ID) objc.ID {
		desc := class("MPSMatrixDescriptor").Send(sel("matrixDescriptorWithRows:columns:rowBytes:dataType:"),
			uintptr(o.Rows), uintptr(o.Cols), uintptr(o.RowBytes), uintptr(MPSDataTypeFloat32))
		return class("MPSMatrix").Send(sel("alloc")).Send(sel("initWithBuffer:offset:descriptor:"), buffer, uintptr(o.Offset), desc)
	}
	mA, mB, mC := matrix(p.A, buffers[0]), matrix(p.B, buffers[1]), matrix(p.C, buffers[2])
	defer mA.Send(sel("release"))
	defer mB.Send(sel("release"))
	defer mC.Send(sel("release"))
	mm := class("MPSMatrixMultiplication").Send(sel("alloc")).Send(
		sel("initWithDevice:transposeLeft:transposeRight:resultRows:resultColumns:interiorColumns:alpha:beta:"),
		b.device, p.TransA, p.TransB, uintptr(p.M), uintptr(p.N), uintptr(p.K), float64(alpha), float64(beta))
	if mm == 0 {
		return fmt.Errorf("cannot make an MPSMatrixMultiplication of %d×%d×%d", p.M, p.N, p.K)
	}
	defer mm.Send(sel("release"))
	cb := b.queue.Send(sel("commandBuffer"))
	mm.Send(sel("encodeToCommandBuffer:leftMatrix:rightMatrix:resultMatrix:"), cb, mA, mB, mC)
	cb.Send(sel("commit"))
	cb.Send(sel("waitUntilCompleted"))
	if status := objc.Send[uintptr](cb, sel("status")); status != 4 { // MTLCommandBufferStatusCompleted
		return fmt.Errorf("the command buffer ended with status %d", status)
	}
	return nil
}

// Engine keeps its tensors in shared Metal buffers (backend.Memory): unified memory lets the
// CPU's kernels (layers.HostOps, optimizers.HostSteps) work on them as they are, and the
// large products go to MPS on the same buffers, with nothing copied. Products of other
// memory go through the BLAS, staged.
type Engine struct {
	G.StandardEngine
	layers.HostOps[float32]
	optimizers.HostSteps
	b      *BLAS
	memory arena.Arena
}

// chunkBytes is the size of the shared buffers Make carves up (at least).
const chunkBytes = 256 << 20

// Engine returns the engine over b's device. Its kernels are the CPU's, with their
// products (attention's, lm_head's, Newton-Schulz's) on the engine itself, so that those of
// its buffers multiply in place.
func (b *BLAS) Engine() (backend.Backend, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.engine == nil {
		e := &Engine{b: b}
		e.HostOps, e.HostSteps = layers.NewHostOps[float32](e), optimizers.NewHostSteps(e)
		e.memory = arena.Arena{MinChunk: chunkBytes, Align: align, New: e.newBuffer}
		b.engine = e
	}
	return b.engine, nil
}

// Name implements backend.Backend.
func (e *Engine) Name() string { return "metal(" + e.b.name + ", shared memory)" }

// String is Name.
func (e *Engine) String() string { return e.Name() }

// newBuffer makes a shared MTLBuffer, whole pages long, for the arena.
func (e *Engine) newBuffer(size uintptr) (arena.Chunk, error) {
	page := uintptr(os.Getpagesize())
	size = (size + page - 1) / page * page
	buf := e.b.device.Send(sel("newBufferWithLength:options:"), size, uintptr(0)) // storage mode shared
	if buf == 0 {
		return arena.Chunk{}, fmt.Errorf("metal: cannot allocate a shared buffer of %d MiB", size>>20)
	}
	return arena.Chunk{Base: objc.Send[unsafe.Pointer](buf, sel("contents")), Size: size, Handle: uintptr(buf)}, nil
}

// Make implements backend.Memory: n zeroed float32s, ints or int8s in a shared buffer.
func (e *Engine) Make(dt tensor.Dtype, n int) any {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	size := uintptr(max(n, 1)) * uintptr(dt.Size())
	p, err := e.memory.Alloc(size)
	if err != nil {
		panic(backend.OutOfMemory{Err: err}) // Make has no error to return
	}
	clear(unsafe.Slice((*byte)(p), size))
	return arena.Typed(p, dt, n)
}

// MemoryLimit implements backend.Budget: the device's recommended working set, the memory
// Metal lets the GPU use without paging (about three quarters of a Mac's).
func (e *Engine) MemoryLimit() uint64 {
	return objc.Send[uint64](e.b.device, sel("recommendedMaxWorkingSetSize"))
}

// Workspace implements backend.Budget: the CPU kernels' scratch (attention's score blocks,
// Newton-Schulz's workspaces), in shared buffers for the latter.
func (e *Engine) Workspace(w backend.Workload) uint64 {
	return e.AttentionWorkspace(w.Attention) + e.NewtonSchulzWorkspace(w.Matrices)
}

// Sync implements backend.Memory: every product has finished when its call returns.
func (e *Engine) Sync() error { return nil }

// Dgemm implements backend.Gemm on the host.
func (e *Engine) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, bm []float64, ldb int, beta float64, c []float64, ldc int) {
	e.b.Dgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// Sgemm implements backend.Gemm: a large product of the engine's memory multiplies where it
// lies; any other goes through the BLAS (staged, or on the CPU).
func (e *Engine) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	p, err := planGemm(transA, transB, m, n, k, lda, ldb, ldc)
	if err == nil && worth(m, n, k, e.b.min) && len(a) >= p.A.Elems && len(bm) >= p.B.Elems && len(c) >= p.C.Elems && e.inPlace(p, alpha, a, bm, beta, c) {
		return
	}
	e.b.Sgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// inPlace multiplies p's operands in their shared buffers, and reports false when one of
// them is not the engine's memory or the device has failed.
func (e *Engine) inPlace(p plan, alpha float32, a, bm []float32, beta float32, c []float32) bool {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	placed, handles, ok := place(&e.memory, p, a, bm, c)
	if !ok || e.b.failed != nil {
		return false
	}
	buffers := [3]objc.ID{objc.ID(handles[0]), objc.ID(handles[1]), objc.ID(handles[2])}
	if e.b.failed = e.b.multiply(placed, alpha, beta, buffers); e.b.failed != nil {
		fmt.Fprintf(os.Stderr, "gochat: metal: %v; the products run on the CPU from now on\n", e.b.failed)
		return false
	}
	return true
}

// init registers the engine as "metal".
func init() {
	backend.Register("metal", func(host backend.Backend) (backend.Backend, error) {
		b, err := Load(host)
		if err != nil {
			return nil, backend.Absent(err)
		}
		return b.Engine()
	})
}

// The engine is a whole backend.
var _ backend.Backend = (*Engine)(nil)
