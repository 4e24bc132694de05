package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestRMSNormGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ rows, size, heads, width int }{
		{1, 1, 1, 1}, {5, 7, 1, 7}, {3, 4, 3, 12}, {2, 6, 2, 18}, {1, 5, 1, 11},
	} {
		checkGradients(t, gradCase{
			name:   fmt.Sprintf("rmsnorm rows%d %d×%d of %d", c.rows, c.heads, c.size, c.width),
			inputs: []tensor.Tensor{randTensor(r, c.rows, c.width)},
			wrt:    []int{0},
			build:  func(in []*G.Node) (*G.Node, error) { return HeadRMSNorm(in[0], c.size, c.heads) },
		})
	}
}

func TestRMSNormForward(t *testing.T) {
	x := []float32{3, 4, 1, 2}
	y, rstd := make([]float32, 4), make([]float32, 1)
	RMSNormForward(y, rstd, x, 4, 2, 1)
	want := float32(1 / math.Sqrt(12.5+NormEps))
	if math.Abs(float64(y[0]-3*want)) > 1e-6 || math.Abs(float64(y[1]-4*want)) > 1e-6 || y[2] != 1 || y[3] != 2 {
		t.Fatalf("got %v", y)
	}
	if rstd[0] != want {
		t.Fatalf("kept rstd %v, want %v", rstd[0], want)
	}
}

func TestHeadRMSNormRejectsOversizedHeads(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 8), G.WithName("x"))
	if _, err := HeadRMSNorm(x, 4, 3); err == nil {
		t.Fatal("3 heads of 4 accepted in rows of 8")
	}
}
