package sgemm

import (
	"fmt"
	"math"
)

// Q8 is a matrix in 8-bit integers with a scale per row: row j stands for Scale[j]·Q[j,:].
// Decoding a token reads every weight once, so a product of int8 weights reads a quarter of
// the bytes of float32 ones.
type Q8 struct {
	Rows, Cols int
	Q          []int8    // Rows×Cols, row-major
	Scale      []float32 // Rows
}

// QuantizeQ8 rounds each row of w (rows×cols, row-major) to the nearest multiple of its
// largest magnitude over 127: symmetric, per row, as is usual for the weights of linear
// layers. A row of zeros keeps the scale 0.
func QuantizeQ8(w []float32, rows, cols int) (Q8, error) {
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return Q8{}, fmt.Errorf("sgemm: %d values are not a %d×%d matrix", len(w), rows, cols)
	}
	q := Q8{Rows: rows, Cols: cols, Q: make([]int8, rows*cols), Scale: make([]float32, rows)}
	for j := range rows {
		row := w[j*cols : (j+1)*cols]
		var top float32
		for _, v := range row {
			top = max(top, float32(math.Abs(float64(v))))
		}
		if !(top < math.MaxFloat32) {
			return Q8{}, fmt.Errorf("sgemm: row %d holds %g, which int8 cannot scale", j, top)
		}
		if top == 0 {
			continue
		}
		scale := top / 127
		q.Scale[j] = scale
		for p, v := range row {
			q.Q[j*cols+p] = int8(math.Round(float64(v / scale)))
		}
	}
	return q, nil
}

// Dequantize returns the float32 matrix q stands for.
func (q Q8) Dequantize() []float32 {
	w := make([]float32, len(q.Q))
	q.DequantizeRows(w, 0, q.Rows)
	return w
}

// DequantizeRows writes rows j0 ≤ j < j1 of the float32 matrix q stands for into w,
// row-major.
func (q Q8) DequantizeRows(w []float32, j0, j1 int) {
	k := q.Cols
	for j := j0; j < j1; j++ {
		row, s := w[(j-j0)*k:(j-j0+1)*k], q.Scale[j]
		for p, v := range q.Q[j*k : (j+1)*k] {
			row[p] = s * float32(v)
		}
	}
}

// MulQ8T sets y[i·ldy+j] = Σ_p x[i·Cols+p]·Scale[j]·Q[j,p], x·qᵀ, for the n rows of x and the
// rows j0 ≤ j < j1 of q: callers split a product across goroutines by rows of q. Each block
// of four rows of q is read from memory once and then from the cache for every row of x.
func MulQ8T(n int, x []float32, q Q8, y []float32, ldy, j0, j1 int) {
	k := q.Cols
	kv := k &^ 15
	var t [4]float32
	j := j0
	dot4 := active.dot4q8
	for ; j+4 <= j1; j += 4 {
		scale := q.Scale[j : j+4 : j+4]
		for i := range n {
			xi := x[i*k : (i+1)*k]
			t = [4]float32{}
			if kv > 0 {
				dot4(kv, &xi[0], &q.Q[j*k], k, &t[0])
			}
			if kv < k {
				for r := range 4 {
					t[r] += dotQ8(xi[kv:], q.Q[(j+r)*k+kv:])
				}
			}
			out := y[i*ldy+j : i*ldy+j+4 : i*ldy+j+4]
			out[0], out[1], out[2], out[3] = scale[0]*t[0], scale[1]*t[1], scale[2]*t[2], scale[3]*t[3]
		}
	}
	for ; j < j1; j++ {
		for i := range n {
			y[i*ldy+j] = q.Scale[j] * dotQ8(x[i*k:(i+1)*k], q.Q[j*k:])
		}
	}
}

// dotQ8 returns Σ x[p]·m[p] over the elements of x.
func dotQ8(x []float32, m []int8) float32 {
	m = m[:len(x)]
	var s float32
	for p, v := range x {
		s += v * float32(m[p])
	}
	return s
}
