package graph_test

import (
	"math"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
)

// The logit lens after the last block is the model's own output, and every attention row is
// a causal distribution.
func TestProbeLastLensIsTheModelsLogits(t *testing.T) {
	cfg := graph.Config{SequenceLen: 16, VocabSize: 300, NLayer: 3, NHead: 4, NKVHead: 2, NEmbd: 64}
	w := graph.InitWeights(cfg, 7)
	for name, p := range w { // lm_head and the projections start at zero: give them values
		for i := range p {
			if p[i] == 0 {
				p[i] = float32(math.Sin(float64(i+len(name)))) * 0.05
			}
		}
	}
	m, err := graph.NewCached(cfg, w, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{5, 17, 42, 42, 9, 250, 3}
	p, err := m.Probe(ids)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.ForwardAll(m.NewKVCache(1, len(ids)), ids, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Lens[cfg.NLayer-1]
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4 {
			t.Fatalf("lens logit %d = %v, the model's %v", i, got[i], want[i])
		}
	}
	for l, heads := range p.Attention {
		for h, a := range heads {
			for i := range p.T {
				var sum float32
				for j := range p.T {
					if j > i && a[i*p.T+j] != 0 {
						t.Fatalf("layer %d head %d: query %d attends to later position %d", l, h, i, j)
					}
					sum += a[i*p.T+j]
				}
				if math.Abs(float64(sum-1)) > 1e-5 {
					t.Fatalf("layer %d head %d: query %d's weights sum to %v", l, h, i, sum)
				}
			}
		}
	}
	if _, err := m.Probe(nil); err == nil {
		t.Fatal("a probe of no tokens succeeded")
	}
}
