//go:build linux

package cudabackend

import (
	_ "embed"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// kernelSource is the CUDA C of the kernels the engine loads when it starts; attentionSource
// that of the fused attention, compiled for a model's head dim when it first needs it.
var (
	//go:embed kernels.cu
	kernelSource string
	//go:embed attention.cu
	attentionSource string
)

// driver holds the functions of the CUDA driver (libcuda) and of NVRTC, the runtime
// compiler, that the engine needs to compile kernelSource and launch its kernels.
type driver struct {
	init           func(uint32) int32
	primaryContext func(*uintptr, int32) int32
	setCurrent     func(uintptr) int32
	loadModule     func(*uintptr, unsafe.Pointer) int32
	function       func(*uintptr, uintptr, string) int32
	launch         func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params *unsafe.Pointer, extra uintptr) int32
	setAttribute   func(f uintptr, attribute, value int32) int32

	createProgram  func(prog *uintptr, src, name string, headers int32, sources, names uintptr) int32
	compileProgram func(prog uintptr, n int32, options **byte) int32
	logSize        func(prog uintptr, size *uint64) int32
	log            func(prog uintptr, out *byte) int32
	ptxSize        func(prog uintptr, size *uint64) int32
	ptx            func(prog uintptr, out *byte) int32
	destroyProgram func(prog *uintptr) int32
}

func loadDriver() (*driver, error) {
	cu, err := openFirst("GOCHAT_LIBCUDA", []string{"libcuda.so.1", "libcuda.so"})
	if err != nil {
		return nil, err
	}
	nv, err := openFirst("GOCHAT_NVRTC", versions("libnvrtc"))
	if err != nil {
		return nil, err
	}
	d := &driver{}
	for _, f := range []struct {
		lib  uintptr
		fn   any
		name string
	}{
		{cu, &d.init, "cuInit"}, {cu, &d.primaryContext, "cuDevicePrimaryCtxRetain"}, {cu, &d.setCurrent, "cuCtxSetCurrent"},
		{cu, &d.loadModule, "cuModuleLoadData"}, {cu, &d.function, "cuModuleGetFunction"}, {cu, &d.launch, "cuLaunchKernel"},
		{cu, &d.setAttribute, "cuFuncSetAttribute"},
		{nv, &d.createProgram, "nvrtcCreateProgram"}, {nv, &d.compileProgram, "nvrtcCompileProgram"},
		{nv, &d.logSize, "nvrtcGetProgramLogSize"}, {nv, &d.log, "nvrtcGetProgramLog"},
		{nv, &d.ptxSize, "nvrtcGetPTXSize"}, {nv, &d.ptx, "nvrtcGetPTX"}, {nv, &d.destroyProgram, "nvrtcDestroyProgram"},
	} {
		if _, err := purego.Dlsym(f.lib, f.name); err != nil {
			return nil, fmt.Errorf("the CUDA driver or NVRTC lacks %s", f.name)
		}
		purego.RegisterLibFunc(f.fn, f.lib, f.name)
	}
	return d, nil
}

// openFirst opens the library named by env, else the first of names the loader finds.
func openFirst(env string, names []string) (uintptr, error) {
	var tried []string
	for _, path := range libraries(env, names) {
		lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return lib, nil
		}
		tried = append(tried, path)
	}
	return 0, fmt.Errorf("no %s (tried %s; set %s or LD_LIBRARY_PATH)", names[0], strings.Join(tried, ", "), env)
}

// compile turns CUDA C source (named name in messages) into PTX for compute capability
// arch (such as "90") with NVRTC, with more NVRTC options (such as -D definitions); the
// driver finishes the compilation for the GPU when it loads the module.
func (d *driver) compile(source, name, arch string, more ...string) ([]byte, error) {
	var prog uintptr
	if code := d.createProgram(&prog, source, name, 0, 0, 0); code != 0 {
		return nil, fmt.Errorf("nvrtcCreateProgram: status %d", code)
	}
	defer d.destroyProgram(&prog)
	options := append([]string{"--gpu-architecture=compute_" + arch, "--std=c++17"}, more...)
	cstrings := make([][]byte, len(options))
	pointers := make([]*byte, len(options))
	for i, o := range options {
		cstrings[i] = append([]byte(o), 0)
		pointers[i] = &cstrings[i][0]
	}
	code := d.compileProgram(prog, int32(len(pointers)), &pointers[0])
	runtime.KeepAlive(cstrings)
	if code != 0 {
		var size uint64
		d.logSize(prog, &size)
		log := make([]byte, size+1)
		d.log(prog, &log[0])
		return nil, fmt.Errorf("compiling %s (NVRTC status %d):\n%s", name, code, strings.TrimRight(string(log), "\x00\n"))
	}
	var size uint64
	if code := d.ptxSize(prog, &size); code != 0 || size == 0 {
		return nil, fmt.Errorf("nvrtcGetPTXSize: status %d", code)
	}
	ptx := make([]byte, size)
	if code := d.ptx(prog, &ptx[0]); code != 0 {
		return nil, fmt.Errorf("nvrtcGetPTX: status %d", code)
	}
	return ptx, nil
}
