package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	"gochat/internal/sgemm"
)

// TestMulQ8T: the int8 product, read directly (fewer than Q8Rows rows of x) and through
// float32 blocks (more; rows of q past one block and a partial last block), equals the
// float64 product of x and the dequantized matrix to float32 rounding, in every column of y.
func TestMulQ8T(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := NewHostOps[float32](goGemm{})
	for _, c := range []struct{ n, rows, cols int }{{1, 300, 64}, {5, 131, 33}, {Q8Rows - 1, 7, 200}, {Q8Rows, 600, 48}, {40, 97, 17}} {
		w := make([]float32, c.rows*c.cols)
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		q, err := sgemm.QuantizeQ8(w, c.rows, c.cols)
		if err != nil {
			t.Fatal(err)
		}
		deq := q.Dequantize()
		x := make([]float32, c.n*c.cols)
		for i := range x {
			x[i] = 2*r.Float32() - 1
		}
		y := make([]float32, c.n*c.rows)
		h.MulQ8T(c.n, x, q.Q, q.Scale, y)
		for i := range c.n {
			for j := range c.rows {
				var want, size float64
				for p := range c.cols {
					term := float64(x[i*c.cols+p]) * float64(deq[j*c.cols+p])
					want += term
					size += math.Abs(term)
				}
				if d := math.Abs(float64(y[i*c.rows+j]) - want); d > 1e-5*size {
					t.Fatalf("%d×%d·(%d×%d)ᵀ: y[%d,%d] = %v, want %v", c.n, c.cols, c.rows, c.cols, i, j, y[i*c.rows+j], want)
				}
			}
		}
	}
}
