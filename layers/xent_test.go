package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestLinearCrossEntropyGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	for _, red := range []Reduction{Mean, Sum, Weighted} {
		for _, c := range []struct {
			rows, width, vocab int
			cap                float64
			targets            []int
		}{
			{1, 1, 1, 15, []int{0}},
			{4, 3, 7, 15, []int{3, IgnoreIndex, 0, 6}},
			{3, 2, 5, 0, []int{1, 1, IgnoreIndex}},
			{5, 4, 11, 2, []int{10, 0, 4, 4, IgnoreIndex}},
		} {
			x, w := randTensor(r, c.rows, c.width), randTensor(r, c.vocab, c.width)
			for i, v := range w.Data().([]float64) {
				w.Data().([]float64)[i] = 4 * v
			}
			inputs := []tensor.Tensor{x, w, intTensor(c.targets)}
			if red == Weighted {
				inputs = append(inputs, randTensor(r, c.rows))
			}
			checkGradients(t, gradCase{
				name:   fmt.Sprintf("lm head %v rows%d C%d V%d cap%g", red, c.rows, c.width, c.vocab, c.cap),
				inputs: inputs,
				wrt:    []int{0, 1},
				build: func(in []*G.Node) (*G.Node, error) {
					if red == Weighted {
						return LinearCrossEntropyWeighted(in[0], in[1], in[2], in[3], c.cap)
					}
					return LinearCrossEntropy(in[0], in[1], in[2], c.cap, red)
				},
			})
		}
	}
}

// TestLinearCrossEntropyChunks checks a vocabulary large enough to take several chunks of
// rows against the same computation done one row at a time.
func TestLinearCrossEntropyChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 21))
	const n, c, v = 7, 3, 3 << 20 // lmHeadRows(v) = 2: four chunks
	x, w := randTensor(r, n, c).Data().([]float64), randTensor(r, v, c).Data().([]float64)
	targets := []int{5, IgnoreIndex, v - 1, 0, 17, 17, 3}
	e := gemmOf(tensor.New(tensor.WithShape(1), tensor.Of(tensor.Float64)))
	losses, scale := make([]float64, n), []float64{1, 2, 3, 4, 5, 6, 7}
	dx, dw := make([]float64, n*c), make([]float64, v*c)
	LinearCrossEntropyPass(e, x, w, targets, c, v, 15, losses, scale, dx, dw, make([]float64, lmHeadRows(e, v)*v))
	rowsDW, scratch := make([]float64, v*c), make([]float64, v)
	for i := 0; i < n; i++ {
		one, dxi := make([]float64, 1), make([]float64, c)
		LinearCrossEntropyPass(e, x[i*c:(i+1)*c], w, targets[i:i+1], c, v, 15, one, scale[i:i+1], dxi, rowsDW, scratch)
		if math.Abs(one[0]-losses[i]) > 1e-12 {
			t.Fatalf("row %d: loss %v in chunks, %v alone", i, losses[i], one[0])
		}
		for j := range dxi {
			if math.Abs(dxi[j]-dx[i*c+j]) > 1e-12 {
				t.Fatalf("row %d: dx differs", i)
			}
		}
	}
	for j := range dw {
		if math.Abs(dw[j]-rowsDW[j]) > 1e-12 {
			t.Fatalf("dW[%d] is %v in chunks, %v row by row", j, dw[j], rowsDW[j])
		}
	}
}

// TestCrossEntropyValue checks the loss against its definition on one row.
func TestCrossEntropyValue(t *testing.T) {
	logits := []float64{20, -3, 1}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(15 * math.Tanh(l/15))
	}
	want := math.Log(sum) - 15*math.Tanh(-3.0/15)
	losses := make([]float64, 1)
	if err := CrossEntropyForward(losses, logits, []int{1}, 3, 15, nil, nil); err != nil {
		t.Fatal(err)
	}
	if math.Abs(losses[0]-want) > 1e-12 {
		t.Fatalf("loss %v, want %v", losses[0], want)
	}
	if err := CrossEntropyForward(losses, logits, []int{3}, 3, 15, nil, nil); err == nil {
		t.Fatal("target 3 accepted with a vocabulary of 3")
	}
	if err := CrossEntropyForward(losses, logits, []int{-2}, 3, 15, nil, nil); err == nil {
		t.Fatal("target -2 accepted")
	}
}

func TestEmbeddingGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 17))
	for _, ids := range [][]int{{0}, {2, 2, 0, 4}, {1, 3, 3, 3, 0, 2, 4}} {
		checkGradients(t, gradCase{
			name:   fmt.Sprintf("embedding ids %v", ids),
			inputs: []tensor.Tensor{randTensor(r, 5, 3), intTensor(ids)},
			wrt:    []int{0},
			build:  func(in []*G.Node) (*G.Node, error) { return Embedding(in[0], in[1]) },
		})
	}
}

func TestEmbeddingRejectsIDsOutsideVocabulary(t *testing.T) {
	y := make([]float32, 4)
	for _, id := range []int{5, -1} {
		if err := EmbeddingForward(y, make([]float32, 10), []int{0, id}, 2); err == nil {
			t.Errorf("id %d accepted with a vocabulary of 5", id)
		}
	}
}
