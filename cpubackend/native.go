//go:build linux || darwin

package cpubackend

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// CBLAS constants (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// nativeLibraries lists where each system keeps its BLAS; GOCHAT_BLAS_LIB, when set, is tried
// first.
func nativeLibraries() []string {
	var libs []string
	if p := os.Getenv("GOCHAT_BLAS_LIB"); p != "" {
		libs = append(libs, p)
	}
	switch runtime.GOOS {
	case "darwin":
		libs = append(libs, "/System/Library/Frameworks/Accelerate.framework/Accelerate")
	default:
		libs = append(libs, "libopenblas.so.0", "libopenblas.so", "libblas.so.3")
	}
	return libs
}

// Native is a system BLAS library loaded with purego. With OpenBLAS, gochat runs the
// library's kernels single-threaded and splits large products across goroutines itself:
// OpenBLAS's own threads spin between calls, and on 16 cores they took the processors from
// the Go kernels that run between matrix products.
type Native struct {
	path  string
	split bool
	sgemm func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	dgemm func(order, transA, transB, m, n, k int32, alpha float64, a *float64, lda int32, b *float64, ldb int32, beta float64, c *float64, ldc int32)
	sgemv func(order, trans, m, n int32, alpha float32, a *float32, lda int32, x *float32, incx int32, beta float32, y *float32, incy int32)
	dgemv func(order, trans, m, n int32, alpha float64, a *float64, lda int32, x *float64, incx int32, beta float64, y *float64, incy int32)
}

// LoadNative opens the first system BLAS that has cblas_sgemm, cblas_dgemm and their
// matrix-vector forms.
func LoadNative() (*Native, error) {
	if os.Getenv("OPENBLAS_CORETYPE") == "" {
		if ct := openblasCoreType(); ct != "" {
			// Read by OpenBLAS when it is loaded; other libraries ignore it.
			os.Setenv("OPENBLAS_CORETYPE", ct)
		}
	}
	var tried []string
	for _, path := range nativeLibraries() {
		lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			tried = append(tried, path)
			continue
		}
		n := &Native{path: path}
		if err := n.bind(lib); err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		return n, nil
	}
	return nil, fmt.Errorf("no system BLAS found (tried %s)", strings.Join(tried, ", "))
}

func (n *Native) bind(lib uintptr) error {
	for _, name := range []string{"cblas_sgemm", "cblas_dgemm", "cblas_sgemv", "cblas_dgemv"} {
		if _, err := purego.Dlsym(lib, name); err != nil {
			return errors.New("no " + name)
		}
	}
	purego.RegisterLibFunc(&n.sgemm, lib, "cblas_sgemm")
	purego.RegisterLibFunc(&n.dgemm, lib, "cblas_dgemm")
	purego.RegisterLibFunc(&n.sgemv, lib, "cblas_sgemv")
	purego.RegisterLibFunc(&n.dgemv, lib, "cblas_dgemv")
	if _, err := purego.Dlsym(lib, "openblas_set_num_threads"); err == nil {
		var set func(int32)
		purego.RegisterLibFunc(&set, lib, "openblas_set_num_threads")
		set(1)
		n.split = true
	}
	return nil
}

// Name implements BLAS: the library, and the OpenBLAS kernels in use when they were chosen
// by OPENBLAS_CORETYPE.
func (n *Native) Name() string {
	if ct := os.Getenv("OPENBLAS_CORETYPE"); ct != "" && strings.Contains(n.path, "openblas") {
		return "native:" + n.path + " (" + ct + ")"
	}
	return "native:" + n.path
}

// Sgemm implements BLAS. On amd64 a product of one row (a decoded token's) is gochat's own:
// its matrix-vector kernels stream the matrix at 82–89% of the memory's read bandwidth on
// the development VM, where OpenBLAS's cblas_sgemv decoded d12 at 0.6–0.8× their speed; on
// arm64 the system's (Accelerate on a Mac, not yet compared there) keeps them.
func (n *Native) Sgemm(transA, transB bool, m, n_, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 1 && runtime.GOARCH == "amd64" {
		GoKernels{}.Sgemm(transA, transB, m, n_, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	nativeGemm(n, n.sgemm, n.sgemv, transA, transB, m, n_, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm implements BLAS.
func (n *Native) Dgemm(transA, transB bool, m, n_, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	nativeGemm(n, n.dgemm, n.dgemv, transA, transB, m, n_, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// nativeGemm checks the operands and calls the library's cblas_?gemm, whole or in slabs. A
// product of one row (a token decoded by the sampler) goes to cblas_?gemv instead, which
// streams the matrix once where GEMM first copies it into packed panels: 2-6× faster here.
func nativeGemm[T float32 | float64](n *Native,
	gemm func(order, transA, transB, m, n, k int32, alpha T, a *T, lda int32, b *T, ldb int32, beta T, c *T, ldc int32),
	gemv func(order, trans, m, n int32, alpha T, a *T, lda int32, x *T, incx int32, beta T, y *T, incy int32),
	transA, transB bool, m, n_, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n_ == 0 {
		return
	}
	checkGemm(transA, transB, m, n_, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 1 && k > 0 {
		incx := int32(1) // the row of A, or its column when A is stored transposed
		if transA {
			incx = int32(lda)
		}
		n.run(m, n_, k, func(_, _, j0, j1 int) {
			if transB { // C = a·Bᵀ, B stored n×k: y = B·a over rows j0..j1 of B
				gemv(cblasRowMajor, cblasNoTrans, int32(j1-j0), int32(k), alpha, &b[j0*ldb], int32(ldb), &a[0], incx, beta, &c[j0], 1)
			} else { // C = a·B, B stored k×n: y = Bᵀ·a over columns j0..j1 of B
				gemv(cblasRowMajor, cblasTrans, int32(k), int32(j1-j0), alpha, &b[j0], int32(ldb), &a[0], incx, beta, &c[j0], 1)
			}
		})
	} else {
		n.run(m, n_, k, func(i0, i1, j0, j1 int) {
			oa, ob, oc := slabOffsets(transA, transB, i0, j0, lda, ldb, ldc)
			gemm(cblasRowMajor, cblasOp(transA), cblasOp(transB), int32(i1-i0), int32(j1-j0), int32(k),
				alpha, first(a[min(oa, len(a)):]), int32(lda), first(b[min(ob, len(b)):]), int32(ldb), beta, &c[oc], int32(ldc))
		})
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
}

// run computes a product whole or, for OpenBLAS, in slabs on several goroutines.
func (n *Native) run(m, n_, k int, gemm func(i0, i1, j0, j1 int)) {
	if n.split {
		splitGemm(m, n_, k, gemm)
	} else {
		gemm(0, m, 0, n_)
	}
}

func cblasOp(t bool) int32 {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
}

// first returns a pointer to s[0], or nil for an empty operand (k == 0).
func first[T float32 | float64](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}
