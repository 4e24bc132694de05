package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestCrossEntropyGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	for _, red := range []Reduction{Mean, Sum, PerToken} {
		for _, c := range []struct {
			rows, vocab int
			cap         float64
			targets     []int
		}{
			{1, 1, 15, []int{0}},
			{4, 7, 15, []int{3, IgnoreIndex, 0, 6}},
			{3, 5, 0, []int{1, 1, IgnoreIndex}},
			{5, 11, 2, []int{10, 0, 4, 4, IgnoreIndex}},
		} {
			logits := randTensor(r, c.rows, c.vocab)
			for i, v := range logits.Data().([]float64) {
				logits.Data().([]float64)[i] = 8 * v
			}
			checkGradients(t, gradCase{
				name:   fmt.Sprintf("xent %v rows%d V%d cap%g", red, c.rows, c.vocab, c.cap),
				inputs: []tensor.Tensor{logits, intTensor(c.targets)},
				wrt:    []int{0},
				build: func(in []*G.Node) (*G.Node, error) {
					return SoftcapCrossEntropy(in[0], in[1], c.cap, red)
				},
			})
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
	if err := CrossEntropyForward(losses, logits, []int{1}, 3, 15, nil); err != nil {
		t.Fatal(err)
	}
	if math.Abs(losses[0]-want) > 1e-12 {
		t.Fatalf("loss %v, want %v", losses[0], want)
	}
	if err := CrossEntropyForward(losses, logits, []int{3}, 3, 15, nil); err == nil {
		t.Fatal("target 3 accepted with a vocabulary of 3")
	}
	if err := CrossEntropyForward(losses, logits, []int{-2}, 3, 15, nil); err == nil {
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
