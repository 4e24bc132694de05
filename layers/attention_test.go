package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gochat/backend"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestAttentionGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for _, s := range []backend.AttnShape{
		{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 1, Tq: 1, Tk: 1},
		{Batch: 2, Heads: 2, KVHeads: 2, HeadDim: 3, Tq: 5, Tk: 5},
		{Batch: 1, Heads: 4, KVHeads: 1, HeadDim: 2, Tq: 7, Tk: 7},
		{Batch: 3, Heads: 6, KVHeads: 2, HeadDim: 2, Tq: 3, Tk: 3},
		{Batch: 1, Heads: 3, KVHeads: 3, HeadDim: 2, Tq: 1, Tk: 1},
		{Batch: 1, Heads: 2, KVHeads: 1, HeadDim: 1, Tq: attnBlock + 3, Tk: attnBlock + 3},
	} {
		checkAttentionGradients(t, r, s)
	}
	// And random shapes: odd sizes and every divisor ratio of kv heads.
	for range 6 {
		kv := 1 + r.IntN(3)
		s := backend.AttnShape{Batch: 1 + r.IntN(3), KVHeads: kv, Heads: kv * (1 + r.IntN(3)), HeadDim: 1 + r.IntN(4)}
		s.Tq = 1 + r.IntN(9)
		s.Tk = s.Tq
		checkAttentionGradients(t, r, s)
	}
}

func checkAttentionGradients(t *testing.T, r *rand.Rand, s backend.AttnShape) {
	t.Helper()
	// Scale inputs up so that the softmax is far from uniform.
	qkv := randTensor(r, s.Batch*s.Tq, (s.Heads+2*s.KVHeads)*s.HeadDim)
	for i, x := range qkv.Data().([]float64) {
		qkv.Data().([]float64)[i] = 3 * x
	}
	checkGradients(t, gradCase{
		name:   fmt.Sprintf("attention %+v", s),
		inputs: []tensor.Tensor{qkv},
		wrt:    []int{0},
		build:  func(in []*G.Node) (*G.Node, error) { return Attention(in[0], s) },
	})
}

// naiveAttention is the textbook definition, for comparison: every query of every head
// against every visible key, softmax in float64.
func naiveAttention(s backend.AttnShape, q, k, v View[float64]) []float64 {
	d := s.HeadDim
	y := make([]float64, s.Batch*s.Tq*s.Heads*d)
	for b := 0; b < s.Batch; b++ {
		for h := 0; h < s.Heads; h++ {
			g := h / (s.Heads / s.KVHeads)
			for i := 0; i < s.Tq; i++ {
				n := s.Tk - s.Tq + i + 1
				w := make([]float64, n)
				m := math.Inf(-1)
				for j := range w {
					for c := 0; c < d; c++ {
						w[j] += q.at(b, i, h, d)[c] * k.at(b, j, g, d)[c]
					}
					w[j] /= math.Sqrt(float64(d))
					m = math.Max(m, w[j])
				}
				var sum float64
				for j := range w {
					w[j] = math.Exp(w[j] - m)
					sum += w[j]
				}
				for j := range w {
					for c := 0; c < d; c++ {
						y[((b*s.Tq+i)*s.Heads+h)*d+c] += w[j] / sum * v.at(b, j, g, d)[c]
					}
				}
			}
		}
	}
	return y
}

// TestAttentionCachedCases checks nanochat's three cached cases (prefill into an empty cache,
// one token, a chunk after a prefix) against the textbook definition, with keys and values
// read from a cache-like layout with room for more positions than are filled.
func TestAttentionCachedCases(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	e := goGemm{}
	const capacity = 300
	for _, c := range []struct{ tq, tk int }{{9, 9}, {1, 9}, {3, 9}, {1, 1}, {attnBlock + 5, 2*attnBlock + 1}, {260, 260}} {
		s := backend.AttnShape{Batch: 2, Heads: 4, KVHeads: 2, HeadDim: 3, Tq: c.tq, Tk: c.tk}
		kvw := s.KVHeads * s.HeadDim
		q := View[float64]{Data: randTensor(r, s.Batch*s.Tq*s.Heads*s.HeadDim).Data().([]float64), Batch: s.Tq * s.Heads * s.HeadDim, Row: s.Heads * s.HeadDim}
		k := View[float64]{Data: randTensor(r, s.Batch*capacity*kvw).Data().([]float64), Batch: capacity * kvw, Row: kvw}
		v := View[float64]{Data: randTensor(r, s.Batch*capacity*kvw).Data().([]float64), Batch: capacity * kvw, Row: kvw}
		y := View[float64]{Data: make([]float64, len(q.Data)), Batch: q.Batch, Row: q.Row}
		lse := make([]float64, s.Batch*s.Heads*s.Tq)
		AttentionForward(e, s, q, k, v, y, lse, make([]float64, AttnScratch(s)))
		want := naiveAttention(s, q, k, v)
		var worst float64
		for i := range want {
			worst = math.Max(worst, math.Abs(want[i]-y.Data[i]))
		}
		if worst > 1e-12 {
			t.Errorf("Tq=%d Tk=%d: max |got − want| = %g", c.tq, c.tk, worst)
		}
	}
}

func TestAttentionRejectsBadShapes(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(8, 12), G.WithName("x"))
	for _, s := range []backend.AttnShape{
		{Batch: 2, Heads: 3, KVHeads: 2, HeadDim: 2, Tq: 4, Tk: 4}, // kv heads do not divide heads
		{Batch: 2, Heads: 2, KVHeads: 1, HeadDim: 2, Tq: 4, Tk: 4}, // width 12 != (2+2)·2
		{Batch: 1, Heads: 2, KVHeads: 1, HeadDim: 3, Tq: 4, Tk: 4}, // 8 rows != 1·4
	} {
		if _, err := Attention(x, s); err == nil {
			t.Errorf("%+v accepted for shape %v", s, x.Shape())
		}
	}
}
