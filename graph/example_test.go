package graph_test

import (
	"fmt"

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
