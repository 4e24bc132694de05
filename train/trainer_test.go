package train

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/layers"
	"gochat/safetensors"
)

// tinyModel builds a 2-layer training graph with nanochat's initialisation.
func tinyModel(t *testing.T, batch, seqLen int) *graph.Model {
	cfg := graph.Config{SequenceLen: seqLen, VocabSize: 64, NLayer: 2, NHead: 2, NKVHead: 1, NEmbd: 64}
	m, err := graph.Build(cfg, graph.Options{Batch: batch, SeqLen: seqLen, Mode: graph.Train, Reduction: layers.Mean})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(graph.InitWeights(cfg, 5)); err != nil {
		t.Fatal(err)
	}
	return m
}

// sequence is a fixed random token sequence to memorise, as one micro-batch of batch rows.
func sequence(batch, seqLen int) Batch {
	r := rand.New(rand.NewPCG(3, 3))
	var b Batch
	for row := 0; row < batch; row++ {
		seq := make([]int, seqLen+1)
		for i := range seq {
			seq[i] = r.IntN(64)
		}
		b.IDs, b.Targets = append(b.IDs, seq[:seqLen]...), append(b.Targets, seq[1:]...)
	}
	return b
}

// TestConvergence trains with nanochat's default recipe until a 2-layer model has
// memorised a short sequence: the loss goes from ln 64 to below 0.1 in 60 steps.
func TestConvergence(t *testing.T) {
	m := tinyModel(t, 2, 16)
	tr, err := NewTrainer(m, DefaultRecipe(60), cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := sequence(2, 16)
	var first, last StepResult
	for step := 0; step < 60; step++ {
		if last, err = tr.Step([]Batch{b}); err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = last
		}
	}
	t.Logf("loss %.4f → %.4f", first.Loss, last.Loss)
	if math.Abs(first.Loss-math.Log(64)) > 1e-4 || last.Loss > 0.1 {
		t.Fatalf("loss %v at the first step (want ln 64 = %v), %v at the last (want < 0.1)", first.Loss, math.Log(64), last.Loss)
	}
}

// TestAccumulationEqualsOneBatch: two micro-batches of one row step like one batch of two.
func TestAccumulationEqualsOneBatch(t *testing.T) {
	b := sequence(2, 8)
	half := func(row int) Batch {
		return Batch{IDs: b.IDs[row*8 : (row+1)*8], Targets: b.Targets[row*8 : (row+1)*8]}
	}
	whole, micro := tinyModel(t, 2, 8), tinyModel(t, 1, 8)
	tw, _ := NewTrainer(whole, DefaultRecipe(10), cpubackend.New(nil))
	tm, _ := NewTrainer(micro, DefaultRecipe(10), cpubackend.New(nil))
	rw, err := tw.Step([]Batch{b})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := tm.Step([]Batch{half(0), half(1)})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rw.Loss-rm.Loss) > 1e-5 || math.Abs(rw.GradNorm-rm.GradNorm) > 1e-5*rw.GradNorm {
		t.Fatalf("one batch: loss %v norm %v; two micro-batches: loss %v norm %v", rw.Loss, rw.GradNorm, rm.Loss, rm.GradNorm)
	}
	ww, wm := whole.Weights(), micro.Weights()
	for name, w := range ww {
		for i := range w {
			if math.Abs(float64(w[i]-wm[name][i])) > 1e-5 {
				t.Fatalf("%s[%d]: %v after one batch, %v after two micro-batches", name, i, w[i], wm[name][i])
			}
		}
	}
}

// saveRun writes a trainer's weights and optimizer state to dir.
func saveRun(t *testing.T, tr *Trainer, dir string) {
	if err := tr.Model.Config.WriteWeights(filepath.Join(dir, "model.safetensors"), tr.Model.Weights()); err != nil {
		t.Fatal(err)
	}
	state, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(filepath.Join(dir, "optim.safetensors"), state, nil); err != nil {
		t.Fatal(err)
	}
}

// restoreRun loads what saveRun wrote into a fresh model of batch rows and trainer, set up by prepare
// (when not nil) before the state is loaded.
func restoreRun(t *testing.T, dir string, batch int, prepare func(*Trainer) error) *Trainer {
	m := tinyModel(t, batch, 8)
	w, err := graph.ReadWeights(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(w); err != nil {
		t.Fatal(err)
	}
	tr, _ := NewTrainer(m, DefaultRecipe(10), cpubackend.New(nil))
	if prepare != nil {
		if err := prepare(tr); err != nil {
			t.Fatal(err)
		}
	}
	state, _, err := safetensors.Read(filepath.Join(dir, "optim.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.LoadState(state); err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestSaveRestoreContinue: two steps, save, restore in a fresh process, two more steps give
// bit for bit the weights of four uninterrupted steps.
func TestSaveRestoreContinue(t *testing.T) {
	if dir := os.Getenv("GOCHAT_TEST_RESUME_DIR"); dir != "" {
		// The fresh process: restore, step twice, save.
		tr := restoreRun(t, dir, 2, nil)
		b := sequence(2, 8)
		for range 2 {
			if _, err := tr.Step([]Batch{b}); err != nil {
				t.Fatal(err)
			}
		}
		saveRun(t, tr, dir)
		return
	}
	b := sequence(2, 8)
	straight, _ := NewTrainer(tinyModel(t, 2, 8), DefaultRecipe(10), cpubackend.New(nil))
	resumed, _ := NewTrainer(tinyModel(t, 2, 8), DefaultRecipe(10), cpubackend.New(nil))
	for step := 0; step < 4; step++ {
		if _, err := straight.Step([]Batch{b}); err != nil {
			t.Fatal(err)
		}
		if step < 2 {
			resumed.Step([]Batch{b})
		}
	}
	dir := t.TempDir()
	saveRun(t, resumed, dir)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSaveRestoreContinue$")
	cmd.Env = append(os.Environ(), "GOCHAT_TEST_RESUME_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fresh process: %v\n%s", err, out)
	}
	final := restoreRun(t, dir, 2, nil)
	if final.Iter != 4 {
		t.Fatalf("restored iteration %d, want 4", final.Iter)
	}
	want, got := straight.Model.Weights(), final.Model.Weights()
	for name, w := range want {
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(got[name][i]) {
				t.Fatalf("%s[%d]: %v uninterrupted, %v resumed", name, i, w[i], got[name][i])
			}
		}
	}
}

func TestLoadStateRejectsMismatches(t *testing.T) {
	tr, _ := NewTrainer(tinyModel(t, 2, 8), DefaultRecipe(10), cpubackend.New(nil))
	tr.Step([]Batch{sequence(2, 8)})
	good, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(map[string]safetensors.Tensor){
		"missing iter": func(s map[string]safetensors.Tensor) { delete(s, "iter") },
		"unknown":      func(s map[string]safetensors.Tensor) { s["sgd.velocity"] = safetensors.F32([]float32{1}, 1) },
		"wrong shape": func(s map[string]safetensors.Tensor) {
			s["muon.momentum_buffer.transformer.h.0.attn.c_q.weight"] = safetensors.F32([]float32{1}, 1)
		},
		"no 2nd moment": func(s map[string]safetensors.Tensor) { delete(s, "adamw.exp_avg_sq.lm_head.weight") },
		"no moments": func(s map[string]safetensors.Tensor) {
			delete(s, "adamw.exp_avg_sq.lm_head.weight")
			delete(s, "adamw.exp_avg.lm_head.weight")
		},
		"no momentum": func(s map[string]safetensors.Tensor) {
			delete(s, "muon.momentum_buffer.transformer.h.1.mlp.c_fc.weight")
		},
		"adamw steps": func(s map[string]safetensors.Tensor) { s["adamw.step"] = safetensors.I64([]int{2}, 1) },
	} {
		s := map[string]safetensors.Tensor{}
		for k, v := range good {
			s[k] = v
		}
		edit(s)
		if err := tr.LoadState(s); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
