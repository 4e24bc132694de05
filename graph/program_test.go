package graph

import (
	"slices"
	"testing"

	"gochat/layers"
)

// planConfig has grouped heads, odd sizes and enough layers for recomputation to matter.
var planConfig = Config{SequenceLen: 32, VocabSize: 96, NLayer: 5, NHead: 4, NKVHead: 2, NEmbd: 40}

// TestRecomputeIsBitForBit: with every block recomputed, the losses and every gradient are
// the same bits as without (same kernels on the same inputs, in the same order), for the
// mean and for weighted per-token losses, over two runs.
func TestRecomputeIsBitForBit(t *testing.T) {
	ids, targets := tokens(2*32, planConfig.VocabSize), tokens(2*32, planConfig.VocabSize)
	slices.Reverse(targets)
	for _, red := range []layers.Reduction{layers.Mean, layers.PerToken} {
		var losses []float64
		var grads []Weights
		for _, rc := range []Recompute{RecomputeNone, RecomputeBlocks} {
			m, err := Build(planConfig, Options{Batch: 2, SeqLen: 32, Mode: Train, Reduction: red, Recompute: rc})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Load(InitWeights(planConfig, 4)); err != nil {
				t.Fatal(err)
			}
			if red == layers.PerToken {
				w := make([]float32, 64)
				for i := range w {
					w[i] = float32(i%5) - 1.5
				}
				if err := m.SetLossWeights(w); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if err := m.Run(ids, targets); err != nil {
					t.Fatal(err)
				}
			}
			g, err := m.Grads()
			if err != nil {
				t.Fatal(err)
			}
			losses, grads = append(losses, m.Loss()), append(grads, g)
		}
		if losses[0] != losses[1] {
			t.Errorf("%v: loss %v without recomputation, %v with", red, losses[0], losses[1])
		}
		for name, g := range grads[0] {
			if !slices.Equal(g, grads[1][name]) {
				t.Errorf("%v: the gradient of %s differs with recomputation", red, name)
			}
		}
	}
}

// TestPlanIsBuildsMemory: planning without tensors gives the memory a built graph takes.
func TestPlanIsBuildsMemory(t *testing.T) {
	for _, opt := range []Options{
		{Batch: 2, SeqLen: 16, Mode: Train},
		{Batch: 3, SeqLen: 8, Mode: Train, Recompute: RecomputeBlocks},
		{Batch: 2, SeqLen: 16, Mode: Train, Reduction: layers.PerToken},
		{Batch: 2, SeqLen: 16, Mode: Eval},
		{Batch: 1, SeqLen: 16, Mode: Infer},
	} {
		planned, err := Plan(planConfig, opt)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Build(planConfig, opt)
		if err != nil {
			t.Fatal(err)
		}
		if m.Memory() != planned {
			t.Errorf("%+v: planned %+v, built %+v", opt, planned, m.Memory())
		}
		if planned.Weights != int64(planConfig.NumParams())*4 {
			t.Errorf("%+v: %d bytes of weights, want %d", opt, planned.Weights, planConfig.NumParams()*4)
		}
		if placed := planned.Gradients + planned.Activations; placed < planned.Peak || placed > planned.Peak+planned.Peak/10 {
			t.Errorf("placed %d bytes for a peak of %d", placed, planned.Peak)
		}
	}
}

// TestActivationsPerToken: the memory an extra row of tokens costs is what the backward
// pass reads, as counted by hand, and recomputation cuts it to the blocks' inputs and one
// block's values.
func TestActivationsPerToken(t *testing.T) {
	c := planConfig
	T := 32
	slope := func(rc Recompute) float64 {
		var mem [2]int64
		for i, b := range []int{8, 16} {
			m, err := Plan(c, Options{Batch: b, SeqLen: T, Mode: Train, Recompute: rc})
			if err != nil {
				t.Fatal(err)
			}
			mem[i] = m.Gradients + m.Activations
		}
		return float64(mem[1]-mem[0]) / float64(8*T) / 4 // floats per token
	}
	C, H, L := float64(c.NEmbd), float64(c.NHead), float64(c.NLayer)
	W := float64((c.NHead + 2*c.NKVHead) * c.HeadDim()) // a q|k|v row
	// What backward reads of each block, per token: the attention's output (C), the two
	// norms' outputs (C each) and their rstds (1 each), q|k|v normalised (W, the product's
	// output rotated in place) and its heads' rstds (NHead + NKVHead), the log-sum-exps (H)
	// and the MLP's ReLU² (4C, over the product's output); not the block's input nor the
	// residual after the attention, which only the norms' gradients would read, from their
	// outputs instead. Outside the blocks: the first norm's output and the final one's, with
	// their rstds, and the lm head's input gradient.
	block := 7*C + W + H + 2 + float64(c.NHead+c.NKVHead)
	outside := 3*C + 2
	kept := L*block + outside
	if got := slope(RecomputeNone); got < kept || got > 1.1*kept {
		t.Errorf("without recomputation a token costs %.0f floats, want %.0f to %.0f", got, kept, 1.1*kept)
	}
	// With it: the blocks' inputs, the values outside them, one block's and its gradients.
	bound := L*C + outside + 2*block
	if got := slope(RecomputeBlocks); got > bound {
		t.Errorf("with recomputation a token costs %.0f floats, want at most %.0f", got, bound)
	}
}

func TestParseRecompute(t *testing.T) {
	for _, r := range []Recompute{RecomputeNone, RecomputeBlocks} {
		if got, err := ParseRecompute(r.String()); err != nil || got != r {
			t.Errorf("%v: got %v, %v", r, got, err)
		}
	}
	if _, err := ParseRecompute("some"); err == nil {
		t.Error("recompute \"some\" was accepted")
	}
}

// TestShareMemory: an evaluation graph in its training graph's memory takes no allocation
// of its own, and the two running in turn compute what they compute apart.
func TestShareMemory(t *testing.T) {
	ids, targets := tokens(2*16, planConfig.VocabSize), tokens(2*16, planConfig.VocabSize)
	slices.Reverse(targets)
	tr, err := Build(planConfig, Options{Batch: 2, SeqLen: 16, Mode: Train})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Load(InitWeights(planConfig, 2)); err != nil {
		t.Fatal(err)
	}
	shared, err := Build(planConfig, Options{Batch: 2, SeqLen: 16, Mode: Eval, Share: tr, ShareMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	own, err := Build(planConfig, Options{Batch: 2, SeqLen: 16, Mode: Eval, Share: tr})
	if err != nil {
		t.Fatal(err)
	}
	if &shared.prog.slab[0] != &tr.prog.slab[0] || &own.prog.slab[0] == &tr.prog.slab[0] {
		t.Fatal("the shared graph does not use the training graph's memory, or the other does")
	}
	if err := tr.Run(ids, targets); err != nil {
		t.Fatal(err)
	}
	g, _ := tr.Grads()
	want := Weights{}
	for name, x := range g {
		want[name] = slices.Clone(x)
	}
	for _, m := range []*Model{shared, own} {
		if err := m.Run(ids, targets); err != nil {
			t.Fatal(err)
		}
	}
	if shared.Loss() != own.Loss() {
		t.Fatalf("evaluation loss %v in shared memory, %v in its own", shared.Loss(), own.Loss())
	}
	if err := tr.Run(ids, targets); err != nil {
		t.Fatal(err)
	}
	g, _ = tr.Grads()
	for name, x := range want {
		if !slices.Equal(g[name], x) {
			t.Fatalf("the gradient of %s changed after an evaluation in the same memory", name)
		}
	}
}
