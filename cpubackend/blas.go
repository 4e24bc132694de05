// Package cpubackend is gochat's CPU engine: Gorgonia's standard engine with every float
// matrix product routed to a BLAS library.
//
// The BLAS is the system's own (OpenBLAS on Linux, Accelerate on macOS), loaded at run time
// through purego so that the build needs no cgo, or gochat's own Go-assembly kernels
// (GoKernels) when no system library can be loaded. GOCHAT_BLAS selects one explicitly:
// "auto" (the default), "native", "go" or "gonum".
package cpubackend

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS is the part of a BLAS library the engine uses: row-major general matrix products
// C = alpha·op(A)·op(B) + beta·C, where op transposes its operand when the flag is set.
// Leading dimensions are row strides in elements.
type BLAS interface {
	Name() string
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

// Gonum is gonum's pure-Go BLAS: always available, 10 to 30 times slower than OpenBLAS; the
// fallback where gochat's own kernels have no assembly for the processor.
type Gonum struct{}

// Name implements BLAS.
func (Gonum) Name() string { return "gonum" }

// Sgemm implements BLAS.
func (Gonum) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gonum.Implementation{}.Sgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm implements BLAS.
func (Gonum) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gonum.Implementation{}.Dgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Select returns the BLAS named by choice: "auto" or "" (the system library, else gochat's
// own kernels with a one-line notice on stderr), "native" (the system library or an error),
// "go" (gochat's kernels, GoKernels) or "gonum".
func Select(choice string) (BLAS, error) {
	switch choice = strings.ToLower(choice); choice {
	case "", "auto":
		b, err := LoadNative()
		if err == nil {
			return b, nil
		}
		var fallback BLAS = GoKernels{}
		if !vectorised() {
			fallback = Gonum{}
		}
		fallbackNotice.Do(func() { fmt.Fprintf(os.Stderr, "gochat: %v; using %s\n", err, fallback.Name()) })
		return fallback, nil
	case "native":
		return LoadNative()
	case "go":
		return GoKernels{}, nil
	case "gonum":
		return Gonum{}, nil
	}
	return nil, fmt.Errorf("unknown BLAS %q: want auto, native, go or gonum", choice)
}

// fallbackNotice says once per process that no system BLAS was found.
var fallbackNotice sync.Once

var (
	defaultOnce sync.Once
	defaultBLAS BLAS
)

// Default returns the process's BLAS, chosen once from GOCHAT_BLAS. An invalid setting is
// reported on stderr and treated as "auto".
func Default() BLAS {
	defaultOnce.Do(func() {
		b, err := Select(os.Getenv("GOCHAT_BLAS"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "gochat: GOCHAT_BLAS: %v; using auto\n", err)
			b, _ = Select("auto")
		}
		defaultBLAS = b
	})
	return defaultBLAS
}
