package train_test

import (
	"math"
	"testing"

	"gochat/backend"
	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/hostdevice"
	"gochat/layers"
	"gochat/train"
)

// TestDevicePaths trains a small model three steps of two micro-batches on an engine that
// is a Device (hostdevice: memory of its own and Go kernels behind the device's interfaces)
// and on the CPU engine: every op and every part of the optimizer step must go to the
// device, the host must touch the device's memory only through its copies, and the two
// must agree. The kernels themselves are checked against these paths on a GPU
// (cudabackend's tests).
func TestDevicePaths(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	const steps = 3
	run := func(e backend.Backend) ([]float64, graph.Weights) {
		m, err := graph.Build(cfg, graph.Options{Batch: 2, SeqLen: 16, Mode: graph.Train, Reduction: layers.Mean, Engine: e})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(graph.InitWeights(cfg, 5)); err != nil {
			t.Fatal(err)
		}
		tr, err := train.NewTrainer(m, train.DefaultRecipe(steps), e)
		if err != nil {
			t.Fatal(err)
		}
		var losses []float64
		for s := range steps {
			batches := make([]train.Batch, 2)
			for k := range batches {
				ids, targets := make([]int, 32), make([]int, 32)
				for i := range ids {
					ids[i], targets[i] = (i*7+s*13+k*31)%cfg.VocabSize, (i*11+s*5+k)%cfg.VocabSize
				}
				targets[k] = layers.IgnoreIndex
				batches[k] = train.Batch{IDs: ids, Targets: targets}
			}
			res, err := tr.Step(batches)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, res.Loss, res.GradNorm)
		}
		w, err := m.HostWeights()
		if err != nil {
			t.Fatal(err)
		}
		return losses, w
	}
	dev := hostdevice.New(cpubackend.Gonum{})
	got, gotW := run(dev)
	want, wantW := run(cpubackend.New(cpubackend.Gonum{}))
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
