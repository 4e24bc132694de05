//go:build linux

package cudabackend

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"gochat/backend"
	"gochat/internal/arena"
	"gochat/layers"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CUDA constants the engine uses (driver_types.h).
const (
	cudaMemAttachGlobal             = 1
	cudaMemcpyDefault               = 4
	cudaDevAttrComputeMajor         = 75
	cudaDevAttrComputeMinor         = 76
	cudaDevAttrConcurrentManagedUse = 89
	chunkBytes                      = 256 << 20 // managed memory is taken from CUDA in chunks of at least this
	nsBatch                         = 256       // matrices Newton-Schulz takes at once
	align                           = 256
	f32                             = 4 // bytes of a float32
)

// Engine keeps a model's tensors in CUDA managed memory and runs the whole training step on
// the GPU: the matrix products with cuBLAS on the tensors where they lie, and every other op
// and the optimizers with the kernels of kernels.cu. It is a backend.Backend, registered as
// "cuda", "cuda-tf32" and "cuda-bf16". Managed memory is one address space for both sides,
// so whatever the host still does (loading weights, reading the loss, saving a checkpoint)
// reads and writes the same tensors, after a Sync.
//
// Products of host memory (the sampler's, which keeps its activations in Go memory) go
// through the BLAS: copied to the GPU when large, else done on the CPU. Gorgonia's own
// operations run on the GPU where they are additions of device tensors (the gradient sums of
// the residual stream), else on the CPU after a Sync.
type Engine struct {
	G.StandardEngine // Gorgonia's own operations that the engine leaves to the host
	b                *BLAS
	drv              *driver
	ctx              uintptr
	arch             string             // compute capability, such as "90"
	functions        map[string]uintptr // kernels by name
	shared           map[string]int     // dynamic shared memory allowed per kernel, where raised

	memory    arena.Arena                         // managed memory, handed out by Make
	usable    uint64                              // the GPU's memory free when the engine opened, less headroom
	scratch   [8]buffer                           // device memory of the engine's own (see the scratch* indices)
	pointers  map[string]uintptr                  // pointer arrays of batched products, by content
	tables    map[*backend.RotaryTable][2]uintptr // rotary cos and sin tables on the device
	errMu     sync.Mutex
	failed    error         // the first failure of queued work
	prof      *profile      // timings, while profiling
	sumResult uintptr       // nsBatch float64s on the device: sums of squares
	queued    atomic.Uint64 // work queued and Syncs: what may have written the engine's memory
	halves    halfCache     // the bfloat16 operands of the last product; the caller holds b.mu
}

// Indices of the engine's scratch buffers.
const (
	scratchDelta = iota // attention's backward: δ = Σ dY·Y per query row and head
	scratchX            // Newton-Schulz: X, X', A, B
	scratchNext
	scratchA
	scratchB
	scratchHalfA // bfloat16 operands
	scratchHalfB
	scratchQ8 // int8 weights dequantized for a product of many rows
)

// Engine returns the engine over b's GPU, compiling its kernels on the first call: it needs
// the CUDA driver (libcuda) and NVRTC besides libcudart and libcublas, and a GPU that lets
// the host use managed memory while kernels run (concurrentManagedAccess: Linux, Pascal or
// newer).
func (b *BLAS) Engine() (backend.Backend, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.engine != nil {
		return b.engine, nil
	}
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	e := &Engine{b: b, drv: drv, functions: map[string]uintptr{}, shared: map[string]int{},
		pointers: map[string]uintptr{}, tables: map[*backend.RotaryTable][2]uintptr{}}
	e.memory = arena.Arena{MinChunk: chunkBytes, Align: align, New: e.newChunk}
	b.w.wait(func() { err = e.open() })
	if err != nil {
		return nil, err
	}
	b.engine = e
	return e, nil
}

// kernelNames are the kernels of kernels.cu the engine loads.
var kernelNames = []string{"scale", "add", "axpy", "relu2Forward", "relu2Backward", "softcapForward",
	"softcapBackward", "embeddingForward", "embeddingBackward", "storeKV", "rmsNormForward", "rmsNormBackward", "rotary", "attnDelta",
	"crossEntropy", "muonMomentum", "adamW", "sumSquares", "normalise", "transpose", "toBF16", "mulQ8T", "dequantizeQ8"}

// kernelOptions are the compiler's options for kernels.cu.
func kernelOptions() []string { return []string{fmt.Sprintf("-DQ8_ROWS=%d", layers.Q8Rows)} }

// open checks the GPU, compiles and loads the kernels, on the worker.
func (e *Engine) open() error {
	b, drv := e.b, e.drv
	var concurrent, major, minor int32
	b.rt.getAttribute(&concurrent, cudaDevAttrConcurrentManagedUse, b.ordinal)
	b.rt.getAttribute(&major, cudaDevAttrComputeMajor, b.ordinal)
	b.rt.getAttribute(&minor, cudaDevAttrComputeMinor, b.ordinal)
	if concurrent == 0 {
		return fmt.Errorf("%s cannot share managed memory with the CPU while it computes (concurrentManagedAccess is 0)", b.device)
	}
	if code := drv.init(0); code != 0 {
		return fmt.Errorf("cuInit: CUDA error %d", code)
	}
	if code := drv.primaryContext(&e.ctx, b.ordinal); code != 0 {
		return fmt.Errorf("cuDevicePrimaryCtxRetain: CUDA error %d", code)
	}
	e.arch = strconv.Itoa(int(major)) + strconv.Itoa(int(minor))
	drv.setCurrent(e.ctx)
	err := e.load(kernelSource, "kernels.cu", "", kernelNames, kernelOptions()...)
	if err != nil {
		return err
	}
	if code := b.rt.malloc(&e.sumResult, 8*nsBatch); code != 0 {
		return fmt.Errorf("cudaMalloc: %s", b.rt.describe(code))
	}
	var free, total uint64
	b.rt.memInfo(&free, &total)
	e.usable = free - min(free, headroom)
	return nil
}

// load compiles source for the GPU, loads it and records its named kernels, each under its
// name followed by suffix; on the worker.
func (e *Engine) load(source, name, suffix string, kernels []string, options ...string) error {
	ptx, err := e.drv.compile(source, name, e.arch, options...)
	if err != nil {
		return err
	}
	var module uintptr
	if code := e.drv.loadModule(&module, unsafe.Pointer(&ptx[0])); code != 0 {
		return fmt.Errorf("loading %s: CUDA error %d", name, code)
	}
	for _, k := range kernels {
		var f uintptr
		if code := e.drv.function(&f, module, k); code != 0 {
			return fmt.Errorf("kernel %s: CUDA error %d", k, code)
		}
		e.functions[k+suffix] = f
	}
	return nil
}

// Name implements backend.Backend.
func (e *Engine) Name() string { return "cuda(" + e.b.device + ", " + e.b.prec.String() + ")" }

// String is Name.
func (e *Engine) String() string { return e.Name() }

// fail records the first failure; the work queued after it is skipped until Sync reports
// it.
func (e *Engine) fail(err error) {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	if e.failed == nil {
		e.failed = err
	}
}

// err is the first failure, if any.
func (e *Engine) err() error {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return e.failed
}

// Make implements backend.Memory: n zeroed float32s, ints or int8s in managed memory.
func (e *Engine) Make(dt tensor.Dtype, n int) any {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	size := uintptr(max(n, 1)) * uintptr(dt.Size())
	var p unsafe.Pointer
	var err error
	e.b.w.wait(func() {
		if p, err = e.memory.Alloc(size); err != nil {
			return
		}
		if code := e.b.rt.memsetAsync(uintptr(p), 0, uint64(size), 0); code != 0 {
			e.fail(errors.New("cudaMemsetAsync: " + e.b.rt.describe(code)))
		}
		e.sync()
	})
	if err != nil {
		panic(backend.OutOfMemory{Err: err}) // Make has no error to return
	}
	return arena.Typed(p, dt, n)
}

// DeviceBytes implements backend.DeviceMemory: the managed memory taken for tensors and
// the engine's scratch buffers.
func (e *Engine) DeviceBytes() uint64 {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	return e.held()
}

// held is the device memory the engine has taken; the caller holds b.mu.
func (e *Engine) held() uint64 {
	n := uint64(e.memory.Total())
	for _, s := range e.scratch {
		n += s.size
	}
	return n
}

// MemoryLimit implements backend.Budget: the GPU's free memory and what the engine holds
// already, within what the engine takes at all (newChunk).
func (e *Engine) MemoryLimit() uint64 {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	var free, total uint64
	e.b.w.wait(func() { e.b.rt.memInfo(&free, &total) })
	return min(free+e.held(), e.usable)
}

// Workspace implements backend.Budget: the scratch buffers a step of w grows, each to the
// largest of its uses (attention's δ, Newton-Schulz's matrices of the largest batch of each
// shape, the bfloat16 operands).
func (e *Engine) Workspace(w backend.Workload) uint64 {
	var size [len(e.scratch)]uint64
	grow := func(i int, n int) { size[i] = max(size[i], uint64(f32*n)) }
	if a := w.Attention; a.Tk > 0 {
		grow(scratchDelta, a.Batch*a.Heads*a.Tq)
	}
	for _, g := range w.Matrices {
		r, c, count := min(g.Rows, g.Cols), max(g.Rows, g.Cols), min(g.Count, nsBatch)
		grow(scratchX, count*r*c)
		grow(scratchNext, count*r*c)
		grow(scratchA, count*r*r)
		grow(scratchB, count*r*r)
	}
	if e.b.prec == BF16 {
		size[scratchHalfA], size[scratchHalfB] = uint64(2*w.Operand), uint64(2*w.Operand)
	}
	var n uint64
	for _, s := range size {
		n += s
	}
	return n
}

// headroom is the GPU memory the engine leaves to CUDA and its libraries (cuBLAS's
// workspaces, NCCL's buffers), which allocate after it opens.
const headroom = 1 << 30

// newChunk takes managed memory from CUDA for the arena, on the worker. It refuses memory
// beyond what the GPU had free: the driver would otherwise page managed memory to and fro
// (d12 at 32 rows of 2048 on an 80 GB H100 once ran at 4,060 tok/s against 106,192 at
// 16), and more managed memory than the GPU has free can hang the GPU for every process
// on it.
func (e *Engine) newChunk(size uintptr) (arena.Chunk, error) {
	c := arena.Chunk{Size: size}
	if held := e.held(); held+uint64(size) > e.usable {
		return c, fmt.Errorf("cuda: %d MiB more device memory asked for, with %d MiB taken, where the GPU had %d MiB free (less %d MiB for CUDA's libraries)",
			size>>20, held>>20, (e.usable+headroom)>>20, headroom>>20)
	}
	if code := e.b.rt.mallocManaged(&c.Base, uint64(size), cudaMemAttachGlobal); code != 0 {
		return c, fmt.Errorf("cudaMallocManaged of %d MiB: %s", size>>20, e.b.rt.describe(code))
	}
	return c, nil
}

// ptr is the device address of x, which must be the engine's memory (0 for an empty x).
func (e *Engine) ptr(x []float32) uintptr { return address(e, x, "a tensor of %d floats") }

func (e *Engine) intPtr(x []int) uintptr { return address(e, x, "%d ids") }

func address[T any](e *Engine, x []T, what string) uintptr {
	if len(x) == 0 {
		return 0
	}
	if !arena.Holds(&e.memory, x) {
		e.fail(fmt.Errorf("cuda: "+what+" is not in the engine's memory (make it with Make)", len(x)))
		return 0
	}
	return uintptr(unsafe.Pointer(&x[0]))
}

// launch queues kernel name on grid blocks of block threads. Arguments are []float32, []int
// and []int8 (the engine's memory), uintptr (device addresses), int (as long long) and float32.
func (e *Engine) launch(name string, grid, block int, args ...any) {
	e.launchAs(name, name, [2]int{grid, 1}, block, 0, args...)
}

// launchAs is launch with the work profiled under label, on a grid of grid[0]×grid[1]
// blocks with shared bytes of dynamic shared memory each.
func (e *Engine) launchAs(label, name string, grid [2]int, block, shared int, args ...any) {
	if grid[0] == 0 || grid[1] == 0 {
		return
	}
	values := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case []float32:
			values[i] = uint64(e.ptr(v))
		case []int:
			values[i] = uint64(e.intPtr(v))
		case []int8:
			values[i] = uint64(address(e, v, "%d int8s"))
		case uintptr:
			values[i] = uint64(v)
		case int:
			values[i] = uint64(int64(v))
		case float32:
			values[i] = uint64(math.Float32bits(v))
		default:
			panic(fmt.Sprintf("cudabackend: kernel argument of type %T", a))
		}
	}
	e.queue(label, func() error {
		params := make([]unsafe.Pointer, len(values))
		for i := range values {
			params[i] = unsafe.Pointer(&values[i])
		}
		e.drv.setCurrent(e.ctx)
		code := e.drv.launch(e.functions[name], uint32(grid[0]), uint32(grid[1]), 1, uint32(block), 1, 1, uint32(shared), 0, &params[0], 0)
		runtime.KeepAlive(values)
		if code != 0 {
			return fmt.Errorf("launching %s: CUDA error %d", name, code)
		}
		return nil
	})
}

// queue hands one call to the worker, timed under label when profiling; it is skipped once
// something has failed.
func (e *Engine) queue(label string, call func() error) {
	e.queued.Add(1)
	e.b.w.async(func() {
		if e.err() != nil {
			return
		}
		e.timed(label, func() {
			if err := call(); err != nil {
				e.fail(err)
			}
		})
	})
}

// elementwise launches an elementwise kernel over n elements.
func (e *Engine) elementwise(name string, n int, args ...any) {
	e.launch(name, elementwiseBlocks(n), 256, args...)
}

// elementwiseBlocks is the grid of an elementwise kernel over n elements.
func elementwiseBlocks(n int) int { return min((n+255)/256, 1<<16) }

// Sync implements backend.Memory: it waits for the queued work and reports the first
// failure since the last Sync. A failure of the device itself comes back with the next work.
func (e *Engine) Sync() error {
	e.b.w.wait(func() { e.sync() })
	e.errMu.Lock()
	defer e.errMu.Unlock()
	err := e.failed
	e.failed = nil
	return err
}

// sync waits for the device and resolves the profile's timings; on the worker. The host
// may write the engine's memory after it.
func (e *Engine) sync() {
	e.queued.Add(1)
	if code := e.b.rt.synchronize(); code != 0 {
		e.fail(errors.New("cuda: " + e.b.rt.describe(code)))
	}
	if e.prof != nil {
		e.prof.resolve(e.b.rt)
	}
}

// reserve makes scratch buffer i at least size bytes of device memory; the caller holds
// b.mu.
func (e *Engine) reserve(i int, size uint64) uintptr {
	buf := &e.scratch[i]
	if buf.size < size {
		e.b.w.wait(func() {
			if buf.ptr != 0 {
				e.sync() // queued work may still use the old buffer
				e.b.rt.free(buf.ptr)
				buf.ptr, buf.size = 0, 0
			}
			if code := e.b.rt.malloc(&buf.ptr, size); code != 0 {
				e.fail(fmt.Errorf("cudaMalloc of %d MiB: %s", size>>20, e.b.rt.describe(code)))
				return
			}
			buf.size = size
		})
	}
	return buf.ptr
}

// CopyToHost implements backend.Remote.
func (e *Engine) CopyToHost(dst, src any) error {
	to, from, n, err := e.pair("CopyToHost", dst, src, src)
	if err != nil {
		return err
	}
	if n > 0 {
		e.b.w.wait(func() {
			if e.err() != nil {
				return
			}
			if code := e.b.rt.copyToHost(to, uintptr(from), uint64(n), cudaMemcpyDevToHost); code != 0 {
				e.fail(errors.New("cuda: copy to the host: " + e.b.rt.describe(code)))
			}
		})
	}
	return e.Sync()
}

// CopyFromHost implements backend.Remote: the copy follows the queued work, and src is
// staged before it returns.
func (e *Engine) CopyFromHost(dst, src any) error {
	to, from, n, err := e.pair("CopyFromHost", dst, src, dst)
	if err != nil || n == 0 {
		return err
	}
	e.queued.Add(1)
	e.b.w.wait(func() {
		if e.err() != nil {
			return
		}
		if code := e.b.rt.copyToDevice(uintptr(to), from, uint64(n), cudaMemcpyHostToDev); code != 0 {
			e.fail(errors.New("cuda: copy to the device: " + e.b.rt.describe(code)))
		}
	})
	return e.err()
}

// pair checks a copy between the host and device, the one of dst and src that must be the
// engine's memory.
func (e *Engine) pair(name string, dst, src, device any) (to, from unsafe.Pointer, n uintptr, err error) {
	if to, from, n, err = arena.Pair(dst, src); err != nil {
		return nil, nil, 0, fmt.Errorf("cuda: %s: %w", name, err)
	}
	p, _, _ := arena.Span(device)
	e.b.mu.Lock()
	_, _, held := e.memory.Find(p, n)
	e.b.mu.Unlock()
	if n > 0 && !held {
		return nil, nil, 0, fmt.Errorf("cuda: %s of %d bytes that are not the engine's memory", name, n)
	}
	return to, from, n, nil
}

// copyBytes queues a copy of n bytes on the device.
func (e *Engine) copyBytes(dst, src uintptr, n int) {
	if n == 0 {
		return
	}
	e.queue("copy", func() error {
		if code := e.b.rt.copyAsync(dst, src, uint64(n), cudaMemcpyDefault, 0); code != 0 {
			return errors.New("cudaMemcpyAsync: " + e.b.rt.describe(code))
		}
		return nil
	})
}

// memset queues the clearing of n bytes on the device.
func (e *Engine) memset(p uintptr, n int) {
	if n == 0 {
		return
	}
	e.queue("memset", func() error {
		if code := e.b.rt.memsetAsync(p, 0, uint64(n), 0); code != 0 {
			return errors.New("cudaMemsetAsync: " + e.b.rt.describe(code))
		}
		return nil
	})
}
