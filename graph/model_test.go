package graph

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"gochat/layers"
)

var tinyConfig = Config{SequenceLen: 16, VocabSize: 64, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 32}

func buildTiny(t *testing.T, opt Options) *Model {
	t.Helper()
	m, err := Build(tinyConfig, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(InitWeights(tinyConfig, 1)); err != nil {
		t.Fatal(err)
	}
	return m
}

func tokens(n, vocab int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (7*i + 3) % vocab
	}
	return ids
}

// TestFreshLossIsLnVocab: nanochat zero-initialises lm_head, so every logit is 0 and the
// first loss is ln(vocab_size), whatever the batch.
func TestFreshLossIsLnVocab(t *testing.T) {
	m := buildTiny(t, Options{Batch: 2, SeqLen: 16, Mode: Train, Reduction: layers.Mean})
	if err := m.Run(tokens(32, 64), tokens(33, 64)[1:]); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Loss(), math.Log(64); math.Abs(got-want) > 1e-5 {
		t.Fatalf("loss %v, want ln 64 = %v", got, want)
	}
}

// TestPerTokenLossesMatchMean checks the per-token reduction against the mean one on a model
// with random lm_head, with ignored targets.
func TestPerTokenLossesMatchMean(t *testing.T) {
	w := InitWeights(tinyConfig, 3)
	for i := range w["lm_head.weight"] {
		w["lm_head.weight"][i] = float32(math.Sin(float64(i)))
	}
	targets := tokens(33, 64)[1:]
	targets[4], targets[9] = layers.IgnoreIndex, layers.IgnoreIndex
	losses := map[string]*Model{}
	for name, opt := range map[string]Options{
		"mean":      {Batch: 2, SeqLen: 16, Mode: Train, Reduction: layers.Mean},
		"weighted":  {Batch: 2, SeqLen: 16, Mode: Train, Reduction: layers.PerToken},
		"per token": {Batch: 2, SeqLen: 16, Mode: Eval},
	} {
		m := buildTiny(t, opt)
		if err := m.Load(w); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(tokens(32, 64), targets); err != nil {
			t.Fatal(err)
		}
		losses[name] = m
	}
	per := losses["per token"].Output()
	if per[4] != 0 || per[9] != 0 {
		t.Errorf("ignored positions have losses %v, %v", per[4], per[9])
	}
	mean := losses["mean"].Loss()
	for _, name := range []string{"weighted", "per token"} {
		if got := losses[name].Loss() / 30; math.Abs(got-mean) > 1e-5 {
			t.Errorf("%s losses' mean %v, mean reduction %v", name, got, mean)
		}
	}
}

// TestBadInputsGiveErrors: what a user can get wrong is reported, never a panic.
func TestBadInputsGiveErrors(t *testing.T) {
	m := buildTiny(t, Options{Batch: 1, SeqLen: 8, Mode: Train})
	ok := tokens(8, 64)
	for name, c := range map[string]struct{ ids, targets []int }{
		"id = vocab":       {append(ok[:7:7], 64), ok},
		"negative id":      {append(ok[:7:7], -1), ok},
		"target = vocab":   {ok, append(ok[:7:7], 64)},
		"target -2":        {ok, append(ok[:7:7], -2)},
		"too few ids":      {ok[:5], ok},
		"too many targets": {ok, append(ok, 1)},
	} {
		if err := m.Run(c.ids, c.targets); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Build(tinyConfig, Options{Batch: 1, SeqLen: tinyConfig.RotaryLen() + 1}); err == nil || !strings.Contains(err.Error(), "rotary") {
		t.Errorf("sequence beyond the rotary table: %v", err)
	}
	if _, err := Build(tinyConfig, Options{Batch: 0, SeqLen: 4}); err == nil {
		t.Error("batch 0 built")
	}
	w := InitWeights(tinyConfig, 1)
	w["lm_head.weight"] = w["lm_head.weight"][:10]
	if err := m.Load(w); err == nil {
		t.Error("short lm_head loaded")
	}
	delete(w, "lm_head.weight")
	if err := m.Load(w); err == nil {
		t.Error("weights without lm_head loaded")
	}
	w = InitWeights(tinyConfig, 1)
	w["transformer.h.9.attn.c_q.weight"] = make([]float32, 4)
	if err := m.Load(w); err == nil {
		t.Error("a parameter of a deeper model loaded")
	}
}

// TestRunsOverwriteGradients: a second run on the same batch gives the same gradients, not
// twice them, and the gradient buffers stay where they are.
func TestRunsOverwriteGradients(t *testing.T) {
	m := buildTiny(t, Options{Batch: 1, SeqLen: 8, Mode: Train})
	ids, targets := tokens(8, 64), tokens(9, 64)[1:]
	m.Run(ids, targets)
	g, _ := m.Grads()
	once := g["lm_head.weight"][3]
	m.Run(ids, targets)
	again, _ := m.Grads()
	if g["lm_head.weight"][3] != once || once == 0 || &again["lm_head.weight"][0] != &g["lm_head.weight"][0] {
		t.Fatalf("after two runs %v, after one %v", g["lm_head.weight"][3], once)
	}
}

// TestStepsDoNotGrowMemory runs 100 training steps and checks the live heap after the last
// is within 1 MiB of the live heap after the tenth.
func TestStepsDoNotGrowMemory(t *testing.T) {
	m := buildTiny(t, Options{Batch: 2, SeqLen: 16, Mode: Train})
	ids, targets := tokens(32, 64), tokens(33, 64)[1:]
	var ms runtime.MemStats
	var after10 uint64
	for step := 1; step <= 100; step++ {
		if err := m.Run(ids, targets); err != nil {
			t.Fatal(err)
		}
		if step == 10 || step == 100 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if step == 10 {
				after10 = ms.HeapAlloc
			}
		}
	}
	if growth := int64(ms.HeapAlloc) - int64(after10); growth > 1<<20 {
		t.Fatalf("live heap grew by %d bytes over 90 steps", growth)
	}
}

// TestEvalSharesWeights: an Eval graph built on a Train graph's weights gives the Train
// graph's per-token losses, before and after the weights change in place.
func TestEvalSharesWeights(t *testing.T) {
	w := InitWeights(tinyConfig, 3)
	for i := range w["lm_head.weight"] {
		w["lm_head.weight"][i] = float32(math.Sin(float64(i)))
	}
	train := buildTiny(t, Options{Batch: 2, SeqLen: 16, Mode: Train, Reduction: layers.PerToken})
	train.Load(w)
	eval, err := Build(tinyConfig, Options{Batch: 2, SeqLen: 16, Mode: Eval, Share: train})
	if err != nil {
		t.Fatal(err)
	}
	ids, targets := tokens(32, 64), tokens(33, 64)[1:]
	for round := range 2 {
		if err := train.Run(ids, targets); err != nil {
			t.Fatal(err)
		}
		if err := eval.Run(ids, targets); err != nil {
			t.Fatal(err)
		}
		for i, want := range train.Output() {
			if got := eval.Output()[i]; got != want {
				t.Fatalf("round %d, token %d: eval loss %v, train loss %v", round, i, got, want)
			}
		}
		if _, err := eval.Grads(); err == nil {
			t.Error("an eval graph returned gradients")
		}
		train.Weights()["lm_head.weight"][5] += 1 // seen by the eval graph too
	}
	if _, err := Build(Config{SequenceLen: 16, VocabSize: 64, NLayer: 1, NHead: 4, NKVHead: 2, NEmbd: 32},
		Options{Batch: 2, SeqLen: 16, Mode: Eval, Share: train}); err == nil {
		t.Error("shared the weights of another configuration")
	}
}

// TestLossWeights: a per-token training graph differentiates Σ_i w_i·loss_i. Weights of
// 1/count on the trained positions give the mean reduction's gradients, and the gradients
// are linear in the weights (RL's signed advantages).
func TestLossWeights(t *testing.T) {
	w := InitWeights(tinyConfig, 5)
	for i := range w["lm_head.weight"] {
		w["lm_head.weight"][i] = float32(math.Cos(float64(i)))
	}
	ids, targets := tokens(32, 64), tokens(33, 64)[1:]
	targets[3], targets[20] = layers.IgnoreIndex, layers.IgnoreIndex
	grads := func(r layers.Reduction, weights []float32) Weights {
		m := buildTiny(t, Options{Batch: 2, SeqLen: 16, Mode: Train, Reduction: r})
		m.Load(w)
		if weights != nil {
			if err := m.SetLossWeights(weights); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Run(ids, targets); err != nil {
			t.Fatal(err)
		}
		g, err := m.Grads()
		if err != nil {
			t.Fatal(err)
		}
		out := Weights{}
		for name, v := range g {
			out[name] = append([]float32(nil), v...)
		}
		return out
	}
	mean := make([]float32, 32)
	a, b, sum := make([]float32, 32), make([]float32, 32), make([]float32, 32)
	for i := range mean {
		mean[i] = 1.0 / 30
		a[i], b[i] = float32(math.Sin(float64(i))), float32(i%5)-2
		sum[i] = a[i] + b[i]
	}
	near := func(what string, got, want Weights) {
		for name, g := range want {
			var d, n float64
			for i := range g {
				d += float64(got[name][i]-g[i]) * float64(got[name][i]-g[i])
				n += float64(g[i]) * float64(g[i])
			}
			if math.Sqrt(d) > 1e-5*math.Sqrt(n) {
				t.Errorf("%s: %s differs by %.2g of its norm", what, name, math.Sqrt(d/n))
			}
		}
	}
	near("weights 1/count", grads(layers.PerToken, mean), grads(layers.Mean, nil))
	ga, gb := grads(layers.PerToken, a), grads(layers.PerToken, b)
	for name := range ga {
		for i := range ga[name] {
			ga[name][i] += gb[name][i]
		}
	}
	near("linearity", grads(layers.PerToken, sum), ga)
	m := buildTiny(t, Options{Batch: 2, SeqLen: 16, Mode: Train, Reduction: layers.Mean})
	if err := m.SetLossWeights(mean); err == nil {
		t.Error("a mean-loss graph took loss weights")
	}
}
