package sampler

import (
	"math"
	"slices"
	"strings"
	"testing"

	"gochat/graph"
)

var tiny = graph.Config{SequenceLen: 24, VocabSize: 50, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 32}

// randomWeights gives lm_head and the projections that nanochat zero-initialises non-zero
// weights, so that the logits depend on every part of the input.
func randomWeights() graph.Weights { return randomWeightsOf(tiny) }

func randomWeightsOf(cfg graph.Config) graph.Weights {
	w := graph.InitWeights(cfg, 5)
	for name, p := range w {
		if name == "lm_head.weight" || strings.HasSuffix(name, "c_proj.weight") {
			for i := range p {
				p[i] = float32(math.Sin(float64(i)*0.7+float64(len(name)))) * 0.3
			}
		}
	}
	return w
}

func infer(t *testing.T, w graph.Weights, batch, seqLen int) *graph.Model {
	return inferOf(t, tiny, w, batch, seqLen)
}

func inferOf(t *testing.T, cfg graph.Config, w graph.Weights, batch, seqLen int) *graph.Model {
	t.Helper()
	m, err := graph.Build(cfg, graph.Options{Batch: batch, SeqLen: seqLen, Mode: graph.Infer})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(w); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCompleteIsGreedy: every generated token is the argmax of the logits of a graph built
// for exactly the sequence before it (no padding), whatever else shares the batch.
func TestCompleteIsGreedy(t *testing.T) {
	w := randomWeights()
	prompts := [][]int{{1, 2, 3}, {7}, {4, 4, 4, 4, 4, 9}}
	out, err := completeUncached(infer(t, w, 4, 24), prompts, 8)
	if err != nil {
		t.Fatal(err)
	}
	for r, row := range out {
		if len(row) != len(prompts[r])+8 || !slices.Equal(row[:len(prompts[r])], prompts[r]) {
			t.Fatalf("row %d: %v", r, row)
		}
		for n := len(prompts[r]); n < len(row); n++ {
			m := infer(t, w, 1, n)
			if err := m.Run(row[:n], nil); err != nil {
				t.Fatal(err)
			}
			last := m.Output()[(n-1)*tiny.VocabSize:]
			best := 0
			for v := range last {
				if last[v] > last[best] {
					best = v
				}
			}
			if row[n] != best {
				t.Fatalf("row %d, token %d: %d, argmax %d", r, n, row[n], best)
			}
		}
	}
	alone, _ := completeUncached(infer(t, w, 1, 24), prompts[1:2], 8)
	if !slices.Equal(alone[0], out[1]) {
		t.Errorf("alone %v, in a batch %v", alone[0], out[1])
	}
}

func TestCompleteStops(t *testing.T) {
	w := randomWeights()
	m := infer(t, w, 2, 10)
	free, _ := completeUncached(m, [][]int{{1, 2}}, 3)
	out, err := completeUncached(m, [][]int{{1, 2}, {3}}, 30, free[0][2])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out[0], free[0][:3]) {
		t.Errorf("row 0 did not stop at its stop token: %v", out[0])
	}
	if len(out[1]) > 10 {
		t.Errorf("row 1 ran past the sequence length: %d tokens", len(out[1]))
	}
	if _, err := completeUncached(m, [][]int{{1}, {2}, {3}}, 1); err == nil {
		t.Error("three prompts in a graph of two rows")
	}
	if _, err := completeUncached(m, [][]int{make([]int, 11)}, 1); err == nil {
		t.Error("a prompt longer than the sequence")
	}
}
