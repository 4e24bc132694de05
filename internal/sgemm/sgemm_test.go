package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// forEachKernel runs f with every microkernel this machine supports forced in turn.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	defer func(k *microKernel) { active = k }(active)
	for _, k := range kernels {
		active = k
		t.Run(k.name, f)
	}
}

// Operands live at the end of guarded buffers, so that an access past the last element the
// definition needs faults.
var guards = struct{ a, b, c []float32 }{guardedBuffer(1 << 20), guardedBuffer(1 << 20), guardedBuffer(1 << 20)}

// tail returns the last n floats of buf.
func tail(buf []float32, n int) []float32 { return buf[len(buf)-n:] }

// operand fills a rows×cols matrix with stride ld at the end of buf: random values in
// [-1, 1), and pad in the gaps between rows.
func operand(rng *rand.Rand, buf []float32, rows, cols, ld int, pad float32) []float32 {
	if rows == 0 || cols == 0 {
		return buf[len(buf):]
	}
	s := tail(buf, (rows-1)*ld+cols)
	for i := range s {
		if i%ld < cols {
			s[i] = 2*rng.Float32() - 1
		} else {
			s[i] = pad
		}
	}
	return s
}

// reference computes C = alpha·op(A)·op(B) + beta·C in float64 into want, and into bound the
// sum of the magnitudes of the terms of each element.
func reference(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, bound []float64) {
	want, bound = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, abs float64
			for p := range k {
				ia, ib := i*lda+p, p*ldb+j
				if transA {
					ia = p*lda + i
				}
				if transB {
					ib = j*ldb + p
				}
				av, bv := a[ia], b[ib]
				s += float64(av) * float64(bv)
				abs += math.Abs(float64(av) * float64(bv))
			}
			s *= float64(alpha)
			abs *= math.Abs(float64(alpha))
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
				abs += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j], bound[i*n+j] = s, abs
		}
	}
	return want, bound
}

type shape struct{ m, n, k int }

func (s shape) String() string { return fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k) }

// testShapes: every combination of small odd sizes, and larger ones that cross the blocking
// (k past kc, n past nc, more than one gemv column block).
func testShapes() []shape {
	small := []int{1, 2, 3, 5, 7, 13, 17, 31, 33}
	var shapes []shape
	for _, m := range small {
		for _, n := range small {
			for _, k := range small {
				shapes = append(shapes, shape{m, n, k})
			}
		}
	}
	return append(shapes,
		shape{63, 65, 100}, shape{65, 63, 257}, shape{100, 257, 63}, shape{257, 100, 65},
		shape{257, 33, 1}, shape{1, 257, 100}, shape{257, 1, 100}, shape{1, 1, 257},
		shape{29, 40, 900}, shape{30, 1000, 17}, shape{15, 1600, 33},
		shape{1, 2100, 9}, shape{2100, 1, 9}, shape{1, 65, 65}, shape{65, 1, 65},
		shape{5, 7, 0}, shape{1, 9, 0}, shape{0, 5, 3}, shape{4, 0, 3})
}

var scalars = []struct{ alpha, beta float32 }{{1, 0}, {1, 1}, {-0.75, 2.5}, {0, 0.5}, {1.5, float32(math.Copysign(0, -1))}}

// TestSgemm checks Sgemm against the float64 definition for every transpose pair and kernel,
// padded strides (whose padding must neither be read into the result nor change) and
// operands that end at their last element. With beta = 0, C starts as NaN, which must not
// propagate. The error allowed is twice the bound of recursive summation in float32,
// (k+2)·2⁻²⁴ of the sum of the magnitudes of the terms (k products, alpha, beta).
func TestSgemm(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		const cPad = 1e30
		for ci, s := range testShapes() {
			for _, trans := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
				for si, sc := range scalars {
					if s.m*s.n*s.k > 1<<16 && si > 2 {
						continue
					}
					pad := (ci + si) % 3 * 2
					transA, transB := trans[0], trans[1]
					rowsA, colsA := s.m, s.k
					if transA {
						rowsA, colsA = s.k, s.m
					}
					rowsB, colsB := s.k, s.n
					if transB {
						rowsB, colsB = s.n, s.k
					}
					lda, ldb, ldc := max(1, colsA+pad), max(1, colsB+pad), max(1, s.n+pad)
					a := operand(rng, guards.a, rowsA, colsA, lda, float32(math.NaN()))
					b := operand(rng, guards.b, rowsB, colsB, ldb, float32(math.NaN()))
					c := operand(rng, guards.c, s.m, s.n, ldc, cPad)
					if sc.beta == 0 {
						for i := range c {
							if i%ldc < s.n {
								c[i] = float32(math.NaN())
							}
						}
					}
					want, bound := reference(transA, transB, s.m, s.n, s.k, sc.alpha, a, lda, b, ldb, sc.beta, c, ldc)
					Sgemm(transA, transB, s.m, s.n, s.k, sc.alpha, a, lda, b, ldb, sc.beta, c, ldc)
					tol := float64(s.k+2) * 0x1p-23
					bad := 0
					for i := range c {
						row, col := i/ldc, i%ldc
						if col >= s.n {
							if c[i] != cPad {
								t.Fatalf("%v transA=%v transB=%v: padding of C at (%d,%d) changed to %v", s, transA, transB, row, col, c[i])
							}
							continue
						}
						w, got := want[row*s.n+col], float64(c[i])
						if !(math.Abs(got-w) <= tol*bound[row*s.n+col]) {
							if bad++; bad <= 3 {
								t.Errorf("%v transA=%v transB=%v alpha=%v beta=%v lda=%d ldb=%d ldc=%d: C[%d,%d] = %v, want %v (±%.3g)",
									s, transA, transB, sc.alpha, sc.beta, lda, ldb, ldc, row, col, got, w, tol*bound[row*s.n+col])
							}
						}
					}
					if bad > 0 {
						t.FailNow()
					}
				}
			}
		}
	})
}

// TestAllocs checks that Sgemm allocates nothing once its buffers exist.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	forEachKernel(t, func(t *testing.T) {
		a, b, c := make([]float32, 300*200), make([]float32, 200*100), make([]float32, 300*100)
		for _, s := range []shape{{300, 100, 200}, {1, 100, 200}, {300, 1, 200}} {
			for _, trans := range [][2]bool{{false, false}, {true, true}} {
				lda, ldb := s.k, s.n
				if trans[0] {
					lda = s.m
				}
				if trans[1] {
					ldb = s.k
				}
				allocs := testing.AllocsPerRun(20, func() {
					Sgemm(trans[0], trans[1], s.m, s.n, s.k, 1, a, lda, b, ldb, 0.5, c, s.n)
				})
				if allocs != 0 {
					t.Errorf("%v trans=%v: %v allocations per call", s, trans, allocs)
				}
			}
		}
	})
}

// TestPanics checks that operands too short for their shape are refused.
func TestPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short A", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		}},
		{"short C", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 3), 2)
		}},
		{"small ldb", func() {
			Sgemm(false, true, 2, 3, 2, 1, make([]float32, 4), 2, make([]float32, 6), 1, 0, make([]float32, 6), 3)
		}},
		{"negative m", func() { Sgemm(false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

type benchShape struct {
	m, n, k        int
	transA, transB bool
}

func (s benchShape) String() string {
	op := map[bool]string{false: "N", true: "T"}
	return fmt.Sprintf("%dx%dx%d_%s%s", s.m, s.n, s.k, op[s.transA], op[s.transB])
}

// benchShapes: the target shape, nanochat's d12 products (C = A·Bᵀ forward, C = Aᵀ·B for
// weight gradients) and decoding one token.
var benchShapes = []benchShape{
	{1024, 768, 3072, false, false},
	{2048, 768, 768, false, true},
	{2048, 3072, 768, false, true},
	{2048, 768, 3072, false, true},
	{768, 3072, 2048, true, false},
	{3072, 768, 2048, true, false},
	{1, 3072, 768, false, false},
	{1, 3072, 768, false, true},
}

type sgemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

func gonumSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	op := map[bool]blas.Transpose{false: blas.NoTrans, true: blas.Trans}
	gonum.Implementation{}.Sgemm(op[transA], op[transB], m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// benchmark times f on each shape, on one goroutine, and reports GFLOP/s (cpubackend's
// GoKernels split products over the processors: gochat bench sgemm --compare).
func benchmark(b *testing.B, f sgemmFunc) {
	for _, s := range benchShapes {
		b.Run(s.String(), func(b *testing.B) {
			lda, ldb := s.k, s.n
			if s.transA {
				lda = s.m
			}
			if s.transB {
				ldb = s.k
			}
			rng := rand.New(rand.NewPCG(5, 6))
			a := operand(rng, make([]float32, s.m*s.k), s.m*s.k/lda, lda, lda, 0)
			bm := operand(rng, make([]float32, s.k*s.n), s.k*s.n/ldb, ldb, ldb, 0)
			c := make([]float32, s.m*s.n)
			for b.Loop() {
				f(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemm times each kernel on one goroutine, and gonum (which uses all processors
// itself) for comparison.
func BenchmarkSgemm(b *testing.B) {
	defer func(k *microKernel) { active = k }(active)
	for _, k := range kernels {
		b.Run(k.name, func(b *testing.B) {
			active = k
			benchmark(b, Sgemm)
		})
	}
	b.Run("gonum", func(b *testing.B) { benchmark(b, gonumSgemm) })
}
