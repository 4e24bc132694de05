package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestMatMulGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dims := range [][3]int{{1, 1, 1}, {3, 5, 7}, {8, 1, 4}, {1, 9, 2}} {
		m, n, k := dims[0], dims[1], dims[2]
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			ta, tb := tr[0], tr[1]
			as, bs := []int{m, k}, []int{k, n}
			if ta {
				as = []int{k, m}
			}
			if tb {
				bs = []int{n, k}
			}
			checkGradients(t, gradCase{
				name:   fmt.Sprintf("matmul m%d n%d k%d ta=%t tb=%t", m, n, k, ta, tb),
				inputs: []tensor.Tensor{randTensor(r, as...), randTensor(r, bs...)},
				wrt:    []int{0, 1},
				build:  func(in []*G.Node) (*G.Node, error) { return MatMul(in[0], in[1], ta, tb) },
			})
		}
	}
}

func TestMatMulShapeErrors(t *testing.T) {
	g := G.NewGraph()
	a := G.NewMatrix(g, tensor.Float32, G.WithShape(3, 4), G.WithName("a"))
	b := G.NewMatrix(g, tensor.Float32, G.WithShape(5, 6), G.WithName("b"))
	if _, err := MatMul(a, b, false, false); err == nil {
		t.Fatal("3×4 · 5×6 built without error")
	}
}

func TestConcatRowsGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(40, 41))
	checkGradients(t, gradCase{
		name:   "concat rows",
		inputs: []tensor.Tensor{randTensor(r, 2, 3), randTensor(r, 1, 3), randTensor(r, 4, 3)},
		wrt:    []int{0, 1, 2},
		build: func(in []*G.Node) (*G.Node, error) {
			w, err := ConcatRows(in...)
			if err != nil {
				return nil, err
			}
			x := G.NewMatrix(in[0].Graph(), tensor.Float64, G.WithName("x"), G.WithValue(randTensor(r, 5, 3)))
			return Linear(x, w) // the model's use: one product for several weights
		},
	})
}
