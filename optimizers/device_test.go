package optimizers_test

import (
	"math"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/hostdevice"
	"gochat/layers"
	"gochat/optimizers"

	"gorgonia.org/tensor"
)

// TestDevicePaths trains a small model three steps of two micro-batches on an engine that
// is a Device (hostdevice: Go memory and Go kernels behind the device's interfaces) and on
// the CPU engine: every op and every part of the optimizer step must go to the device, and
// the two must agree. The kernels themselves are checked against these paths on a GPU
// (cudabackend's tests).
func TestDevicePaths(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	const steps = 3
	train := func(e tensor.Engine) ([]float64, graph.Weights) {
		m, err := graph.Build(cfg, graph.Options{Batch: 2, SeqLen: 16, Mode: graph.Train, Reduction: layers.Mean, Engine: e})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(graph.InitWeights(cfg, 5)); err != nil {
			t.Fatal(err)
		}
		tr, err := optimizers.NewTrainer(m, optimizers.DefaultSettings(steps), e.(layers.Gemm))
		if err != nil {
			t.Fatal(err)
		}
		var losses []float64
		for s := range steps {
			batches := make([]optimizers.Batch, 2)
			for k := range batches {
				ids, targets := make([]int, 32), make([]int, 32)
				for i := range ids {
					ids[i], targets[i] = (i*7+s*13+k*31)%cfg.VocabSize, (i*11+s*5+k)%cfg.VocabSize
				}
				targets[k] = layers.IgnoreIndex
				batches[k] = optimizers.Batch{IDs: ids, Targets: targets}
			}
			res, err := tr.Step(batches)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, res.Loss, res.GradNorm)
		}
		return losses, m.Weights()
	}
	dev := hostdevice.New(cpubackend.Gonum{})
	got, gotW := train(dev)
	want, wantW := train(cpubackend.New(cpubackend.Gonum{}))
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6*math.Abs(want[i]) {
			t.Errorf("step %d: loss or gradient norm %v on the device, %v on the CPU", i/2, got[i], want[i])
		}
	}
	for name, w := range wantW {
		for i := range w {
			if d := math.Abs(float64(gotW[name][i] - w[i])); d > 1e-5 {
				t.Fatalf("%s[%d]: %v on the device, %v on the CPU", name, i, gotW[name][i], w[i])
			}
		}
	}
	calls := dev.Calls()
	micro := steps * 2
	for kernel, n := range map[string]int{
		"EmbeddingForward": micro, "EmbeddingBackward": micro, "CrossEntropyForward": micro,
		"AttentionForward": micro * cfg.NLayer, "AttentionBackward": micro * cfg.NLayer,
		"RMSNormForward": micro * (3*cfg.NLayer + 2), "RMSNormBackward": micro * (3*cfg.NLayer + 2),
		"RotaryForward": 2 * micro * cfg.NLayer, "ReLU2Forward": micro * cfg.NLayer, "ReLU2Backward": micro * cfg.NLayer,
		"MuonMomentum": steps * 6 * cfg.NLayer, "Axpy": steps * 6 * cfg.NLayer,
		// One Newton-Schulz batch per shape: q and c_proj 64×64, k and v 32×64, c_fc, mlp c_proj.
		"NewtonSchulz": steps * 4, "AdamW": steps * 2, "SumSquares": steps,
	} {
		if calls[kernel] != n {
			t.Errorf("%s ran %d times on the device, want %d", kernel, calls[kernel], n)
		}
	}
	for _, kernel := range []string{"AddForward", "Copy", "Zero", "Scale"} {
		if calls[kernel] == 0 {
			t.Errorf("%s never ran on the device", kernel)
		}
	}
}

// TestDeviceGraphs runs the other graphs on a device: per-token training losses (whose
// gradient Gorgonia makes in host memory), evaluation and inference; every kernel must get
// the device's memory (Run reports it otherwise) and the results must be the CPU's.
func TestDeviceGraphs(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	ids, targets := make([]int, 32), make([]int, 32)
	for i := range ids {
		ids[i], targets[i] = (i*7+3)%cfg.VocabSize, (i*11+5)%cfg.VocabSize
	}
	targets[3] = layers.IgnoreIndex
	for _, o := range []graph.Options{
		{Mode: graph.Train, Reduction: layers.PerToken},
		{Mode: graph.Train, Reduction: layers.Sum},
		{Mode: graph.Eval},
		{Mode: graph.Infer},
	} {
		run := func(e tensor.Engine) ([]float32, float64, graph.Weights) {
			o.Batch, o.SeqLen, o.Engine = 2, 16, e
			m, err := graph.Build(cfg, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Load(graph.InitWeights(cfg, 5)); err != nil {
				t.Fatal(err)
			}
			w := m.Weights()
			for i := range w["lm_head.weight"] { // nanochat's zero lm_head would hide the rest
				w["lm_head.weight"][i] = 0.01 * float32(i%7-3)
			}
			if err := m.Run(ids, targets); err != nil {
				t.Fatalf("mode %d, reduction %v: %v", o.Mode, o.Reduction, err)
			}
			grads, _ := m.Grads()
			return m.Output(), m.Loss(), grads
		}
		out, loss, grads := run(hostdevice.New(cpubackend.Gonum{}))
		wantOut, wantLoss, wantGrads := run(cpubackend.New(cpubackend.Gonum{}))
		if math.Abs(loss-wantLoss) > 1e-5*math.Abs(wantLoss) || len(out) != len(wantOut) {
			t.Fatalf("mode %d, reduction %v: loss %v on the device, %v on the CPU", o.Mode, o.Reduction, loss, wantLoss)
		}
		for i := range wantOut {
			if math.Abs(float64(out[i]-wantOut[i])) > 1e-5 {
				t.Fatalf("mode %d: output %d is %v on the device, %v on the CPU", o.Mode, i, out[i], wantOut[i])
			}
		}
		for name, g := range wantGrads {
			for i := range g {
				if math.Abs(float64(grads[name][i]-g[i])) > 1e-6 {
					t.Fatalf("reduction %v: %s gradient %d is %v on the device, %v on the CPU", o.Reduction, name, i, grads[name][i], g[i])
				}
			}
		}
	}
}
