package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// ParamSpec names one parameter and its PyTorch shape [out, in] (wte: [vocab, n_embd]).
type ParamSpec struct {
	Name  string
	Shape [2]int
}

// Params lists the parameters in nanochat's state_dict order.
func (c Config) Params() []ParamSpec {
	d, kv := c.HeadDim(), c.NKVHead*c.HeadDim()
	specs := []ParamSpec{{"transformer.wte.weight", [2]int{c.VocabSize, c.NEmbd}}}
	for i := 0; i < c.NLayer; i++ {
		p := fmt.Sprintf("transformer.h.%d.", i)
		specs = append(specs,
			ParamSpec{p + "attn.c_q.weight", [2]int{c.NHead * d, c.NEmbd}},
			ParamSpec{p + "attn.c_k.weight", [2]int{kv, c.NEmbd}},
			ParamSpec{p + "attn.c_v.weight", [2]int{kv, c.NEmbd}},
			ParamSpec{p + "attn.c_proj.weight", [2]int{c.NEmbd, c.NEmbd}},
			ParamSpec{p + "mlp.c_fc.weight", [2]int{4 * c.NEmbd, c.NEmbd}},
			ParamSpec{p + "mlp.c_proj.weight", [2]int{c.NEmbd, 4 * c.NEmbd}},
		)
	}
	return append(specs, ParamSpec{"lm_head.weight", [2]int{c.VocabSize, c.NEmbd}})
}

// Weights maps parameter names to row-major float32 data in PyTorch's layout.
type Weights map[string][]float32

// InitWeights draws nanochat's initialisation from a seeded generator: the token embedding
// from N(0, 1); c_q, c_k, c_v and c_fc from N(0, σ²) with σ = min(1, √(out/in))/√in;
// lm_head and both c_proj matrices zero (so the first loss is ln vocab_size).
func InitWeights(c Config, seed uint64) Weights {
	r := rand.New(rand.NewPCG(seed, 0x6e616e6f63686174)) // "nanochat"
	w := Weights{}
	for _, p := range c.Params() {
		out, in := p.Shape[0], p.Shape[1]
		data := make([]float32, out*in)
		var std float64
		switch {
		case p.Name == "transformer.wte.weight":
			std = 1
		case p.Name == "lm_head.weight" || strings.HasSuffix(p.Name, "c_proj.weight"):
			std = 0
		default:
			std = math.Min(1, math.Sqrt(float64(out)/float64(in))) / math.Sqrt(float64(in))
		}
		if std != 0 {
			for i := range data {
				data[i] = float32(r.NormFloat64() * std)
			}
		}
		w[p.Name] = data
	}
	return w
}

// Check reports a missing, unexpected or wrongly sized parameter.
func (c Config) Check(w Weights) error {
	specs := c.Params()
	for _, p := range specs {
		data, ok := w[p.Name]
		if !ok {
			return fmt.Errorf("weights: missing %s", p.Name)
		}
		if len(data) != p.Shape[0]*p.Shape[1] {
			return fmt.Errorf("weights: %s has %d values, want %d×%d", p.Name, len(data), p.Shape[0], p.Shape[1])
		}
	}
	if len(w) != len(specs) {
		for name := range w {
			if !c.hasParam(name) {
				return fmt.Errorf("weights: unexpected parameter %s for this config", name)
			}
		}
	}
	return nil
}

func (c Config) hasParam(name string) bool {
	for _, p := range c.Params() {
		if p.Name == name {
			return true
		}
	}
	return false
}
