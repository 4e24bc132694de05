package sgemm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestQuantizeQ8: every value is within half a step of its row's scale, the largest
// magnitude of a row is ±127 steps, a zero row stays zero, and what cannot be scaled is an
// error.
func TestQuantizeQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rows, cols := 5, 37
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64()) * float32(1+i/cols)
	}
	clear(w[2*cols : 3*cols])
	q, err := QuantizeQ8(w, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	back := q.Dequantize()
	for j := range rows {
		top := int8(0)
		for p := range cols {
			i := j*cols + p
			if d := math.Abs(float64(back[i] - w[i])); d > float64(q.Scale[j])/2*(1+1e-6) {
				t.Fatalf("row %d col %d: %g became %g, more than half a step of %g", j, p, w[i], back[i], q.Scale[j])
			}
			top = max(top, q.Q[i], -q.Q[i])
		}
		if want := int8(127); j != 2 && top != want || j == 2 && (top != 0 || q.Scale[j] != 0) {
			t.Errorf("row %d: largest step %d, scale %g", j, top, q.Scale[j])
		}
	}
	w[3] = float32(math.Inf(1))
	if _, err := QuantizeQ8(w, rows, cols); err == nil || !strings.Contains(err.Error(), "cannot scale") {
		t.Errorf("an infinite weight: %v", err)
	}
	if _, err := QuantizeQ8(w, rows, cols+1); err == nil {
		t.Error("a wrong shape was taken")
	}
}

// TestMulQ8T compares every kernel's product with the dequantized matrix's, in float64, on
// shapes with ragged edges (rows not a multiple of 4, columns not a multiple of 8 or 16),
// columns that the kernels take in 64s, in 16s, and both, one and several rows of x, and a
// part of q's rows.
func TestMulQ8T(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, sh := range []struct{ n, rows, cols, j0, j1 int }{{1, 64, 128, 0, 64}, {3, 13, 45, 0, 13}, {2, 30, 7, 4, 27}, {1, 9, 768, 1, 9}, {2, 8, 40, 0, 8}, {1, 8, 100, 0, 8}, {2, 4, 64, 0, 4}} {
			w := make([]float32, sh.rows*sh.cols)
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			q, err := QuantizeQ8(w, sh.rows, sh.cols)
			if err != nil {
				t.Fatal(err)
			}
			dq := q.Dequantize()
			x := make([]float32, sh.n*sh.cols)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			y := make([]float32, sh.n*sh.rows)
			for i := range y {
				y[i] = 42 // outside j0..j1 must stay
			}
			MulQ8T(sh.n, x, q, y, sh.rows, sh.j0, sh.j1)
			for i := range sh.n {
				for j := range sh.rows {
					got := y[i*sh.rows+j]
					if j < sh.j0 || j >= sh.j1 {
						if got != 42 {
							t.Fatalf("%+v: y[%d,%d] outside the rows asked was written", sh, i, j)
						}
						continue
					}
					var want, size float64
					for p := range sh.cols {
						want += float64(x[i*sh.cols+p]) * float64(dq[j*sh.cols+p])
						size += math.Abs(float64(x[i*sh.cols+p]) * float64(dq[j*sh.cols+p]))
					}
					if math.Abs(float64(got)-want) > 1e-5*size {
						t.Fatalf("%+v: y[%d,%d] = %g, want %g", sh, i, j, got, want)
					}
				}
			}
		}
	})
}

func BenchmarkMulQ8T(b *testing.B) {
	rows, cols := 3072, 768
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(i%13) - 6
	}
	q, _ := QuantizeQ8(w, rows, cols)
	x, y := make([]float32, cols), make([]float32, rows)
	b.SetBytes(int64(rows * cols))
	for b.Loop() {
		MulQ8T(1, x, q, y, rows, 0, rows)
	}
}

// BenchmarkMulQ8TFromMemory streams a 192 MiB int8 matrix, more than any cache holds, through
// each kernel on one goroutine: the rate a decoded token reads its weights at, per core.
func BenchmarkMulQ8TFromMemory(b *testing.B) {
	rows, cols := 1<<18, 768
	q := Q8{Rows: rows, Cols: cols, Q: make([]int8, rows*cols), Scale: make([]float32, rows)}
	for i := range q.Q {
		q.Q[i] = int8(i%13 - 6)
	}
	x, y := make([]float32, cols), make([]float32, rows)
	defer func(k *microKernel) { active = k }(active)
	for _, k := range kernels {
		active = k
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(int64(rows * cols))
			for b.Loop() {
				MulQ8T(1, x, q, y, rows, 0, rows)
			}
		})
	}
}
