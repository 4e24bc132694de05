package layers

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestElementwiseGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, shape := range [][]int{{1, 1}, {3, 7}, {5, 1}} {
		x := randTensor(r, shape...)
		checkGradients(t, gradCase{name: "relu2", inputs: []tensor.Tensor{x}, wrt: []int{0},
			build: func(in []*G.Node) (*G.Node, error) { return ReLU2(in[0]) }})
		big := randTensor(r, shape...)
		for i, v := range big.Data().([]float64) {
			big.Data().([]float64)[i] = 30 * v // reach the saturated part of tanh
		}
		checkGradients(t, gradCase{name: "softcap", inputs: []tensor.Tensor{big}, wrt: []int{0},
			build: func(in []*G.Node) (*G.Node, error) { return Softcap(in[0], 15) }})
	}
}

func TestAddGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	for _, shape := range [][]int{{1, 1}, {3, 7}} {
		checkGradients(t, gradCase{name: "add", inputs: []tensor.Tensor{randTensor(r, shape...), randTensor(r, shape...)}, wrt: []int{0, 1},
			build: func(in []*G.Node) (*G.Node, error) { return Add(in[0], in[1]) }})
	}
}
