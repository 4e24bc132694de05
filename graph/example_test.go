package graph_test

import (
	"fmt"
	"math"

	"gochat/cpubackend"
	"gochat/graph"
)

// A probe of an untrained model: every head's attention rows are distributions over the
// positions before them, and the logit lens reads one set of logits per layer.
func ExampleCached_Probe() {
	cfg := graph.Config{SequenceLen: 16, VocabSize: 300, NLayer: 2, NHead: 2, NKVHead: 1, NEmbd: 32}
	m, err := graph.NewCached(cfg, graph.InitWeights(cfg, 1), cpubackend.New(nil))
	if err != nil {
		panic(err)
	}
	p, err := m.Probe([]int{1, 2, 3, 4, 5})
	if err != nil {
		panic(err)
	}
	row := p.Attention[1][0][3*p.T : 4*p.T] // layer 1, head 0, query 3
	fmt.Printf("layers %d, heads %d, lens %d×%d\n", len(p.Attention), len(p.Attention[0]), len(p.Lens), len(p.Lens[0])/p.T)
	fmt.Printf("query 3 attends to 4 positions: %.2f, nothing after: %.0f\n", row[0]+row[1]+row[2]+row[3], row[4])
	// Output:
	// layers 2, heads 2, lens 2×300
	// query 3 attends to 4 positions: 1.00, nothing after: 0
}

// A 2×3 matrix drawn with 10-pixel cells.
func ExampleHeatMap() {
	img, err := graph.HeatMap([]float32{0, 0.5, 1, 1, 0.5, 0}, 2, 3, 10)
	if err != nil {
		panic(err)
	}
	fmt.Println(img.Bounds(), img.At(0, 0), img.At(25, 5))
	// Output: (0,0)-(30,20) {255 255 255 255} {8 48 107 255}
}

// nanochat's GPT at depth 2 for a 512-token vocabulary, built for batches of 2 rows of 64
// tokens and run forward and backward once: a fresh model predicts every token alike
// (nanochat starts lm_head at zero), so its loss is ln 512.
func ExampleBuild() {
	cfg := graph.ConfigForDepth(2, 512, 64)
	model, err := graph.Build(cfg, graph.Options{Batch: 2, SeqLen: 64, Mode: graph.Train, Engine: cpubackend.New(nil)})
	if err != nil {
		panic(err)
	}
	if err := model.Load(graph.InitWeights(cfg, 42)); err != nil {
		panic(err)
	}
	ids, targets := make([]int, 2*64), make([]int, 2*64)
	for i := range ids {
		ids[i], targets[i] = i%512, (i+1)%512
	}
	if err := model.Run(ids, targets); err != nil {
		panic(err)
	}
	grads, err := model.Grads()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d layers of width %d, %d parameters\n", cfg.NLayer, cfg.NEmbd, cfg.NumParams())
	fmt.Printf("loss %.4f = ln 512 = %.4f; gradients of %d tensors\n", model.Loss(), math.Log(512), len(grads))
	// Output:
	// 2 layers of width 128, 524288 parameters
	// loss 6.2383 = ln 512 = 6.2383; gradients of 14 tensors
}
