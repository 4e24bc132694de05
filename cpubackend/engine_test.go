package cpubackend

import (
	"gochat/backend"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// blases returns every BLAS this machine has: gonum and gochat's kernels always, the native
// one where it loads.
func blases(t *testing.T) []BLAS {
	out := []BLAS{Gonum{}, GoKernels{}}
	if n, err := LoadNative(); err == nil {
		out = append(out, n)
	} else {
		t.Logf("native BLAS not tested: %v", err)
	}
	return out
}

// naive is the textbook row-major product op(A)·op(B) with row strides.
func naive(ta, tb bool, m, n, k int, a []float64, lda int, b []float64, ldb int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			for p := 0; p < k; p++ {
				ai, bi := i*lda+p, p*ldb+j
				if ta {
					ai = p*lda + i
				}
				if tb {
					bi = j*ldb + p
				}
				c[i*n+j] += a[ai] * b[bi]
			}
		}
	}
	return c
}

// TestGemmMatchesDefinition checks Sgemm and Dgemm of every BLAS, every transpose and
// padded leading dimensions, with alpha and beta, against the definition; one-row products
// (the native BLAS's matrix-vector path) too, small and large enough to be split.
func TestGemmMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const pad = 2
	for _, size := range [][3]int{{5, 7, 3}, {1, 7, 3}, {1, 4096, 1024}} {
		m, n, k := size[0], size[1], size[2]
		for _, b := range blases(t) {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					ar, ac := backend.Stored(ta, m, k)
					br, bc := backend.Stored(tb, k, n)
					lda, ldb, ldc := ac+pad, bc+pad, n+pad
					a64, b64 := make([]float64, ar*lda), make([]float64, br*ldb)
					for i := range a64 {
						a64[i] = r.Float64() - 0.5
					}
					for i := range b64 {
						b64[i] = r.Float64() - 0.5
					}
					want := naive(ta, tb, m, n, k, a64, lda, b64, ldb)
					abs := naive(ta, tb, m, n, k, absAll(a64), lda, absAll(b64), ldb) // Σ|a||b|, for the error bound
					c64 := make([]float64, m*ldc)
					for i := range c64 {
						c64[i] = 1
					}
					b.Dgemm(ta, tb, m, n, k, 2, a64, lda, b64, ldb, 0.5, c64, ldc)
					a32, b32, c32 := f32(a64), f32(b64), make([]float32, m*ldc)
					for i := range c32 {
						c32[i] = 1
					}
					b.Sgemm(ta, tb, m, n, k, 2, a32, lda, b32, ldb, 0.5, c32, ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							// Rounding error of a k-term dot product in precision u: at most about
							// k·u·Σ|a||b| (times alpha), plus the final scaling and add.
							w, bound := 2*want[i*n+j]+0.5, 2*abs[i*n+j]*float64(k+2)
							if math.Abs(c64[i*ldc+j]-w) > bound*0x1p-53+1e-15 || math.Abs(float64(c32[i*ldc+j])-w) > bound*0x1p-24+1e-6 {
								t.Fatalf("%s %d×%d×%d ta=%t tb=%t (%d,%d): got %v / %v, want %v", b.Name(), m, n, k, ta, tb, i, j, c64[i*ldc+j], c32[i*ldc+j], w)
							}
						}
					}
					if c64[m*ldc-1] != 1 || c32[n] != 1 {
						t.Fatalf("%s wrote into the padding", b.Name())
					}
				}
			}
		}
	}
}

func absAll(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Abs(v)
	}
	return out
}

func f32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// TestEngineRunsGorgoniaMatMuls attaches the engine to a TapeMachine and runs Gorgonia's own
// matrix ops, including transposed views and batched products, against the standard engine.
func TestEngineRunsGorgoniaMatMuls(t *testing.T) {
	for _, b := range blases(t) {
		run := func(eng tensor.Engine) []float32 {
			g := G.NewGraph()
			r := rand.New(rand.NewPCG(2, 2))
			val := func(shape ...int) *tensor.Dense {
				v := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
				for i := range v.Data().([]float32) {
					v.Data().([]float32)[i] = r.Float32() - 0.5
				}
				return v
			}
			x := G.NewMatrix(g, tensor.Float32, G.WithName("x"), G.WithValue(val(4, 6)))
			w := G.NewMatrix(g, tensor.Float32, G.WithName("w"), G.WithValue(val(5, 6)))
			h := G.Must(G.Mul(x, G.Must(G.Transpose(w))))
			q := G.NewTensor(g, tensor.Float32, 3, G.WithName("q"), G.WithValue(val(2, 4, 3)))
			s := G.Must(G.BatchedMatMul(q, q, false, true))
			loss := G.Must(G.Add(G.Must(G.Sum(G.Must(G.Square(h)))), G.Must(G.Sum(s))))
			if _, err := G.Grad(loss, x, w, q); err != nil {
				t.Fatal(err)
			}
			m := G.NewTapeMachine(g, G.WithEngine(eng))
			defer m.Close()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			var out []float32
			for _, n := range []*G.Node{x, w, q} {
				gv, _ := n.Grad()
				out = append(out, gv.Data().([]float32)...)
			}
			return append(out, loss.Value().Data().(float32))
		}
		counter := &countingBLAS{BLAS: b}
		got, want := run(New(counter)), run(G.StandardEngine{})
		// x·wᵀ and its two gradients, plus one product per batch element for s and each of
		// its two gradients.
		if counter.calls < 3+3*2 {
			t.Errorf("%s: the engine did %d matrix products, want at least 9", b.Name(), counter.calls)
		}
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: value %d is %v, standard engine %v", b.Name(), i, got[i], want[i])
			}
		}
	}
}

func TestSelect(t *testing.T) {
	if b, err := Select("gonum"); err != nil || b.Name() != "gonum" {
		t.Fatalf("gonum: %v %v", b, err)
	}
	if b, err := Select("go"); err != nil || !strings.HasPrefix(b.Name(), "go (") {
		t.Fatalf("go: %v %v", b, err)
	}
	if _, err := Select("mkl"); err == nil {
		t.Fatal("unknown BLAS accepted")
	}
	if b, err := Select("auto"); err != nil || b == nil {
		t.Fatalf("auto: %v", err)
	}
}

// countingBLAS counts the single-precision products it forwards.
type countingBLAS struct {
	BLAS
	calls int
}

func (c *countingBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	c.calls++
	c.BLAS.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

// TestSplitProductsMatch runs products large enough to be split across goroutines, in row
// slabs (tall C) and column slabs (wide C), with every transpose and padded strides, against
// gonum computing them whole.
func TestSplitProductsMatch(t *testing.T) {
	split := []BLAS{GoKernels{}}
	if native, err := LoadNative(); err == nil {
		split = append(split, native)
	} else {
		t.Logf("native BLAS not tested: %v", err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	r := rand.New(rand.NewPCG(3, 3))
	for _, dims := range [][3]int{{200, 40, 300}, {40, 200, 300}, {97, 113, 401}} {
		m, n, k := dims[0], dims[1], dims[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				ar, ac := backend.Stored(ta, m, k)
				br, bc := backend.Stored(tb, k, n)
				lda, ldb, ldc := ac+3, bc+1, n+2
				a, b := make([]float32, ar*lda), make([]float32, br*ldb)
				for i := range a {
					a[i] = r.Float32() - 0.5
				}
				for i := range b {
					b[i] = r.Float32() - 0.5
				}
				want := make([]float32, m*ldc)
				for i := range want {
					want[i] = 1
				}
				Gonum{}.Sgemm(ta, tb, m, n, k, 1.5, a, lda, b, ldb, 0.25, want, ldc)
				for _, blas := range split {
					got := make([]float32, m*ldc)
					for i := range got {
						got[i] = 1
					}
					blas.Sgemm(ta, tb, m, n, k, 1.5, a, lda, b, ldb, 0.25, got, ldc)
					for i := range want {
						if math.Abs(float64(got[i]-want[i])) > 1e-4 {
							t.Fatalf("%s %v ta=%t tb=%t: element %d is %v, gonum %v", blas.Name(), dims, ta, tb, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}
