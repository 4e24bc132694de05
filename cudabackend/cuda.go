//go:build linux

package cudabackend

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"gochat/backend"
	"gochat/dist"
	"gochat/internal/parallel"

	"github.com/ebitengine/purego"
)

// DefaultMinFLOPs is the size (2·m·n·k) from which a product of host memory goes to the
// GPU, unless GOCHAT_CUDA_MIN_FLOPS sets another; 0 sends every float32 product, whatever
// its intensity. (The engine's own products, of device memory, always run there.)
const DefaultMinFLOPs = 1 << 27

// MinIntensity is the arithmetic a product of host memory must do per byte it moves over PCIe (its
// operands up, its result down) to go to the GPU: at about 20 GB/s of copies against about
// 1 TFLOP/s of 16 CPU cores, a product of fewer than ~55 FLOP per byte finishes sooner on
// the CPU, however fast the GPU. lm_head's chunks (128 rows against the whole 65,536×768
// matrix: 55 FLOP/B) stay on the CPU; the blocks' products (~200 FLOP/B at T=2048) go.
const MinIntensity = 64

// cuBLAS and CUDA runtime constants (cublas_api.h, driver_types.h).
const (
	cublasOpN             = 0
	cublasOpT             = 1
	cublasDefaultMath     = 0
	cublasTF32TensorMath  = 3
	cudaR32F              = 0  // cudaDataType of float32
	cudaR16BF             = 14 // of bfloat16
	cublasCompute32F      = 68
	cublasGemmDefault     = -1
	cudaMemcpyHostToDev   = 1
	cudaMemcpyDevToHost   = 2
	cudaDevicePropNameLen = 256
)

// cudart holds the functions of libcudart and libcublas gochat calls.
type cudart struct {
	getDeviceCount func(*int32) int32
	setDevice      func(int32) int32
	getProperties  func(*byte, int32) int32
	malloc         func(*uintptr, uint64) int32
	free           func(uintptr) int32
	copyToDevice   func(uintptr, unsafe.Pointer, uint64, int32) int32
	copyToHost     func(unsafe.Pointer, uintptr, uint64, int32) int32
	errorString    func(int32) string
	getAttribute   func(*int32, int32, int32) int32
	mallocManaged  func(*unsafe.Pointer, uint64, uint32) int32
	memsetAsync    func(uintptr, int32, uint64, uintptr) int32
	copyAsync      func(uintptr, uintptr, uint64, int32, uintptr) int32
	synchronize    func() int32
	lastError      func() int32
	memInfo        func(free, total *uint64) int32
	createEvent    func(*uintptr) int32
	recordEvent    func(uintptr, uintptr) int32
	elapsed        func(*float32, uintptr, uintptr) int32
	create         func(*uintptr) int32
	setMathMode    func(uintptr, int32) int32
	sgemm          func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc int32) int32
	sgemmBatched   func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc int32, count int32) int32
	gemmEx         func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uintptr, atype, lda int32, b uintptr, btype, ldb int32, beta *float32, c uintptr, ctype, ldc, compute, algo int32) int32
}

// libraries lists where a library may be: the path in env first, then the names the
// dynamic loader finds (LD_LIBRARY_PATH), newest version first.
func libraries(env string, names []string) []string {
	var out []string
	if p := os.Getenv(env); p != "" {
		out = append(out, p)
	}
	return append(out, names...)
}

// versions names a CUDA library of version 13, then 12, then any.
func versions(base string) []string { return []string{base + ".so.13", base + ".so.12", base + ".so"} }

func loadRuntime() (*cudart, error) {
	rt, err := openFirst("GOCHAT_CUDART", versions("libcudart"))
	if err != nil {
		return nil, backend.Absent(err)
	}
	bl, err := openFirst("GOCHAT_CUBLAS", versions("libcublas"))
	if err != nil {
		return nil, backend.Absent(err)
	}
	r := &cudart{}
	for _, f := range []struct {
		lib  uintptr
		fn   any
		name string
	}{
		{rt, &r.getDeviceCount, "cudaGetDeviceCount"}, {rt, &r.setDevice, "cudaSetDevice"},
		{rt, &r.getProperties, "cudaGetDeviceProperties"}, {rt, &r.malloc, "cudaMalloc"}, {rt, &r.free, "cudaFree"},
		{rt, &r.copyToDevice, "cudaMemcpy"}, {rt, &r.copyToHost, "cudaMemcpy"}, {rt, &r.errorString, "cudaGetErrorString"},
		{rt, &r.getAttribute, "cudaDeviceGetAttribute"}, {rt, &r.mallocManaged, "cudaMallocManaged"}, {rt, &r.memsetAsync, "cudaMemsetAsync"},
		{rt, &r.copyAsync, "cudaMemcpyAsync"}, {rt, &r.synchronize, "cudaDeviceSynchronize"}, {rt, &r.lastError, "cudaGetLastError"}, {rt, &r.memInfo, "cudaMemGetInfo"},
		{rt, &r.createEvent, "cudaEventCreate"}, {rt, &r.recordEvent, "cudaEventRecord"}, {rt, &r.elapsed, "cudaEventElapsedTime"},
		{bl, &r.create, "cublasCreate_v2"}, {bl, &r.setMathMode, "cublasSetMathMode"}, {bl, &r.sgemm, "cublasSgemm_v2"},
		{bl, &r.sgemmBatched, "cublasSgemmBatched"}, {bl, &r.gemmEx, "cublasGemmEx"},
	} {
		if _, err := purego.Dlsym(f.lib, f.name); err != nil {
			return nil, fmt.Errorf("the CUDA libraries lack %s", f.name)
		}
		purego.RegisterLibFunc(f.fn, f.lib, f.name)
	}
	return r, nil
}

// worker runs every CUDA call of a BLAS and of its engine on one locked OS thread, in the
// order they are queued. cuBLAS fails now and then (CUBLAS_STATUS_INTERNAL_ERROR, measured
// on the H100 machine: one run in two of gochat bench engines) when consecutive calls come
// from different threads, as a goroutine's do; locked to one thread it never did. Work
// queued with async returns at once, which also lets the caller go on while the thread
// talks to the driver; wait returns when its function has run.
type worker chan func()

func startWorker() worker {
	w := make(worker, 1<<12)
	go func() {
		runtime.LockOSThread()
		for f := range w {
			f()
		}
	}()
	return w
}

func (w worker) async(f func()) { w <- f }

func (w worker) wait(f func()) {
	done := make(chan struct{})
	w <- func() { f(); close(done) }
	<-done
}

// BLAS runs large float32 products of host memory on the GPU, copying them there and back;
// the others, and float64, run on the host engine.
type BLAS struct {
	cpu     backend.Backend
	rt      *cudart
	handle  uintptr
	device  string
	ordinal int32 // the GPU's number among those visible (rankDevice)
	prec    Precision
	min     int // MinFLOPs

	w      worker     // the thread that makes every CUDA call
	mu     sync.Mutex // one caller at a time
	bufs   [3]buffer  // A, B and C of a product, grown as needed
	half   []uint16   // bfloat16 staging of an operand
	failed error      // the device's first failure; after it every product runs on the CPU
	engine *Engine    // made by Engine on first use
}

// rankDevice is the GPU a process takes of the count visible to it: the first, or, under
// mpirun with several visible, the one its rank on this machine names (as torchrun's
// LOCAL_RANK does). gochat's launcher, or a user's wrapper, that gives each rank one GPU
// through CUDA_VISIBLE_DEVICES leaves one visible.
func rankDevice(count int) (int, error) {
	local, ok := dist.LocalRank()
	if !ok || count == 1 {
		return 0, nil
	}
	if local >= count {
		return 0, fmt.Errorf("cuda: this is rank %d of this machine's ranks, and %d GPUs are visible: start at most one rank per GPU", local, count)
	}
	return local, nil
}

// buffer is device memory that grows and is reused.
type buffer struct {
	ptr  uintptr
	size uint64
}

// Precision is how the GPU multiplies float32 matrices.
type Precision int

const (
	FP32 Precision = iota // strict float32
	TF32                  // TF32 tensor cores: inputs rounded to 10 mantissa bits
	BF16                  // operands rounded to bfloat16 (7 mantissa bits), float32 accumulation and result: the engine's plain products (attention and Newton-Schulz's batched products multiply in TF32); the host BLAS rounds on the CPU, halving the bus
)

// String is the precision's name: fp32, tf32 or bf16, as Engine.Name shows it.
func (p Precision) String() string { return [...]string{"fp32", "tf32", "bf16"}[p] }

// Load opens this process's GPU (the first, or its rank's: rankDevice), multiplying in
// precision prec. Products below DefaultMinFLOPs, and every float64 product, go to cpu.
func Load(cpu backend.Backend, prec Precision) (*BLAS, error) {
	rt, err := loadRuntime()
	if err != nil {
		return nil, err
	}
	b := &BLAS{cpu: cpu, rt: rt, prec: prec, device: "CUDA device 0", min: DefaultMinFLOPs, w: startWorker()}
	if v := os.Getenv("GOCHAT_CUDA_MIN_FLOPS"); v != "" {
		if b.min, err = strconv.Atoi(v); err != nil || b.min < 0 {
			return nil, fmt.Errorf("GOCHAT_CUDA_MIN_FLOPS=%q: want a number of FLOPs", v)
		}
	}
	b.w.wait(func() { err = b.open() })
	if err != nil {
		close(b.w)
		return nil, err
	}
	return b, nil
}

// open takes this process's GPU (rankDevice) and makes the cuBLAS handle, on the worker.
func (b *BLAS) open() error {
	rt := b.rt
	var n int32
	if code := rt.getDeviceCount(&n); code != 0 || n == 0 {
		return backend.Absent(fmt.Errorf("no CUDA device: %s", rt.describe(code)))
	}
	device, err := rankDevice(int(n))
	if err != nil {
		return err
	}
	if code := rt.setDevice(int32(device)); code != 0 {
		return fmt.Errorf("cudaSetDevice(%d): %s", device, rt.describe(code))
	}
	b.ordinal, b.device = int32(device), fmt.Sprintf("CUDA device %d", device)
	props := make([]byte, 4096) // cudaDeviceProp starts with its name
	if rt.getProperties(&props[0], int32(device)) == 0 {
		b.device = strings.TrimRight(string(props[:cudaDevicePropNameLen]), "\x00")
	}
	if code := rt.create(&b.handle); code != 0 {
		return fmt.Errorf("cublasCreate: status %d", code)
	}
	mode := int32(cublasDefaultMath)
	if b.prec != FP32 { // bfloat16 engines' float32 products too (Newton-Schulz's batches)
		mode = cublasTF32TensorMath
	}
	if code := rt.setMathMode(b.handle, mode); code != 0 {
		return fmt.Errorf("cublasSetMathMode: status %d", code)
	}
	return nil
}

func (rt *cudart) describe(code int32) string {
	if code == 0 {
		return "no devices"
	}
	return fmt.Sprintf("%s (error %d)", rt.errorString(code), code)
}

// Name names the GPU, the precision and the host engine.
func (b *BLAS) Name() string {
	return fmt.Sprintf("cuda:%s (%s, small products on %s)", b.device, b.prec, b.cpu.Name())
}

// Dgemm runs on the host: float64 is for tests and checks.
func (b *BLAS) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, bm []float64, ldb int, beta float64, c []float64, ldc int) {
	b.cpu.Dgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// Sgemm is the row-major C = alpha·op(A)·op(B) + beta·C, on the GPU
// from the threshold on. cuBLAS is column-major, where row-major C is Cᵀ, so it computes
// Cᵀ = op(B)ᵀ·op(A)ᵀ with the operands' memory as it is.
func (b *BLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	spanA, spanB, spanC := backend.Spans(transA, transB, m, n, k, lda, ldb, ldc)
	flops, moved := 2*float64(m)*float64(n)*float64(k), 4*float64(spanA+spanB+2*spanC)
	if k == 0 || b.min > 0 && (flops < float64(b.min) || flops < MinIntensity*moved) {
		b.cpu.Sgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
		return
	}
	if len(a) < spanA || len(bm) < spanB || len(c) < spanC {
		panic(fmt.Sprintf("cudabackend: sgemm operands too short for %d×%d×%d", m, n, k))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.tryGPU(transA, transB, m, n, k, alpha, a[:spanA], lda, bm[:spanB], ldb, beta, c[:spanC], ldc, nil) {
		b.cpu.Sgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
	}
}

// tryGPU runs a product on the GPU unless an earlier one failed there, and reports whether
// it did; a failure is said once, and from then on the products run on the CPU. An operand
// for which on gives a device address (the engine's memory) is read where it lies; the
// others, host memory, are copied in and C back out. The caller holds b.mu.
func (b *BLAS) tryGPU(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int, on func([]float32) uintptr) bool {
	if b.failed != nil {
		return false
	}
	b.w.wait(func() { b.failed = b.run(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc, on) })
	if b.failed != nil {
		fmt.Fprintf(os.Stderr, "gochat: cuda: %v; the products run on the CPU from now on\n", b.failed)
	}
	return b.failed == nil
}

// run is tryGPU's product, on the worker.
func (b *BLAS) run(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int, on func([]float32) uintptr) error {
	upload := b.upload
	if b.prec == BF16 {
		upload = b.uploadBF16
	}
	lies := func(x []float32) uintptr { // x's address if it is on the device already, else 0
		if on == nil {
			return 0
		}
		return on(x)
	}
	// place is x's device address: where it lies, or buffer i after copying x in (when its
	// values count) or not.
	place := func(i int, x []float32, up func(int, []float32) (uintptr, error), values bool) (uintptr, error) {
		if p := lies(x); p != 0 {
			return p, nil
		}
		if !values {
			return b.reserve(i, uint64(4*len(x)))
		}
		return up(i, x)
	}
	dA, err := place(0, a, upload, true)
	if err != nil {
		return err
	}
	dB, err := place(1, bm, upload, true)
	if err != nil {
		return err
	}
	// C goes up when its old values count, and when its rows have gaps (ldc > n): the copy
	// back covers the gaps, which must come back as they were.
	dC, err := place(2, c, b.upload, beta != 0 || (m > 1 && ldc != n))
	if err != nil {
		return err
	}
	if b.prec == BF16 {
		err = b.gemmBF16(transA, transB, m, n, k, alpha, dA, lda, dB, ldb, beta, dC, ldc)
	} else {
		err = b.gemm(transA, transB, m, n, k, alpha, dA, lda, dB, ldb, beta, dC, ldc)
	}
	if err != nil {
		return err
	}
	if lies(c) != 0 { // the product is in place
		return nil
	}
	if code := b.rt.copyToHost(unsafe.Pointer(&c[0]), dC, uint64(4*len(c)), cudaMemcpyDevToHost); code != 0 {
		return errors.New("copy to host: " + b.rt.describe(code))
	}
	return nil
}

// gemm runs a row-major product on device memory: cuBLAS is column-major, where row-major C
// is Cᵀ, so it computes Cᵀ = op(B)ᵀ·op(A)ᵀ with the operands' memory as it is.
func (b *BLAS) gemm(transA, transB bool, m, n, k int, alpha float32, dA uintptr, lda int, dB uintptr, ldb int, beta float32, dC uintptr, ldc int) error {
	op := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	if code := b.rt.sgemm(b.handle, op(transB), op(transA), int32(n), int32(m), int32(k), &alpha, dB, int32(ldb), dA, int32(lda), &beta, dC, int32(ldc)); code != 0 {
		return fmt.Errorf("cublasSgemm %d×%d×%d: status %d%s", m, n, k, code, b.rt.pending())
	}
	return nil
}

// pending describes the CUDA runtime's last error on this thread, if any, and clears it:
// a library's internal error often reports one left by earlier work.
func (rt *cudart) pending() string {
	if code := rt.lastError(); code != 0 {
		return fmt.Sprintf(" (CUDA reports %s)", rt.describe(code))
	}
	return ""
}

// gemmBF16 is gemm with bfloat16 operands A and B (already on the device in bfloat16) and
// a float32 C, accumulated in float32.
func (b *BLAS) gemmBF16(transA, transB bool, m, n, k int, alpha float32, dA uintptr, lda int, dB uintptr, ldb int, beta float32, dC uintptr, ldc int) error {
	op := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	if code := b.rt.gemmEx(b.handle, op(transB), op(transA), int32(n), int32(m), int32(k), &alpha, dB, cudaR16BF, int32(ldb),
		dA, cudaR16BF, int32(lda), &beta, dC, cudaR32F, int32(ldc), cublasCompute32F, cublasGemmDefault); code != 0 {
		return fmt.Errorf("cublasGemmEx %d×%d×%d: status %d%s", m, n, k, code, b.rt.pending())
	}
	return nil
}

// uploadBF16 rounds x to bfloat16 (to nearest, ties to even) on the CPU and copies that,
// half the bytes of x, into buffer i.
func (b *BLAS) uploadBF16(i int, x []float32) (uintptr, error) {
	if cap(b.half) < len(x) {
		b.half = make([]uint16, len(x))
	}
	h := b.half[:len(x)]
	parallel.For(len(x), 1, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			h[j] = ToBF16(x[j])
		}
	})
	size := uint64(2 * len(x))
	ptr, err := b.reserve(i, size)
	if err != nil {
		return 0, err
	}
	if code := b.rt.copyToDevice(ptr, unsafe.Pointer(&h[0]), size, cudaMemcpyHostToDev); code != 0 {
		return 0, errors.New("copy to device: " + b.rt.describe(code))
	}
	return ptr, nil
}

// ToBF16 rounds a float32 to the nearest bfloat16 (ties to even), keeping NaNs NaN.
func ToBF16(f float32) uint16 {
	bits := math.Float32bits(f)
	if bits&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and a NaN
		return uint16(bits>>16) | 0x40
	}
	return uint16((bits + 0x7fff + (bits>>16)&1) >> 16)
}

// reserve makes buffer i at least size bytes.
func (b *BLAS) reserve(i int, size uint64) (uintptr, error) {
	buf := &b.bufs[i]
	if buf.size < size {
		if buf.ptr != 0 {
			b.rt.free(buf.ptr)
			buf.ptr, buf.size = 0, 0
		}
		if code := b.rt.malloc(&buf.ptr, size); code != 0 {
			return 0, fmt.Errorf("cudaMalloc of %d bytes: %s", size, b.rt.describe(code))
		}
		buf.size = size
	}
	return buf.ptr, nil
}

// upload copies x into buffer i.
func (b *BLAS) upload(i int, x []float32) (uintptr, error) {
	size := uint64(4 * len(x))
	ptr, err := b.reserve(i, size)
	if err != nil {
		return 0, err
	}
	if code := b.rt.copyToDevice(ptr, unsafe.Pointer(&x[0]), size, cudaMemcpyHostToDev); code != 0 {
		return 0, errors.New("copy to device: " + b.rt.describe(code))
	}
	return ptr, nil
}

// init registers the engine as "cuda" (strict float32), "cuda-tf32" and "cuda-bf16".
func init() {
	for name, prec := range map[string]Precision{"cuda": FP32, "cuda-tf32": TF32, "cuda-bf16": BF16} {
		backend.Register(name, func(host backend.Backend) (backend.Backend, error) {
			b, err := Load(host, prec)
			if err != nil {
				return nil, err
			}
			return b.Engine()
		})
	}
}
