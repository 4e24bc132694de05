package graph

import (
	"math"
	"testing"
)

// TestDepthRule checks the derived sizes and nanochat's published parameter counts and
// FLOP estimates (notes/nanochat.md §1.1: vocab 65,536, sequence 2048).
func TestDepthRule(t *testing.T) {
	for _, c := range []struct {
		depth, heads, params int
		flops                float64
	}{
		{4, 2, 36_700_160, 1.447e8},
		{12, 6, 185_597_952, 1.038090e9},
		{20, 10, 560_988_160, 3.491758e9},
		{26, 13, 1_081_999_360, 6.900941e9},
	} {
		cfg := ConfigForDepth(c.depth, 65536, 2048)
		if cfg.NEmbd != 64*c.depth || cfg.NHead != c.heads || cfg.NKVHead != c.heads || cfg.HeadDim() != 128 {
			t.Errorf("d%d: %+v", c.depth, cfg)
		}
		if got := cfg.NumParams(); got != c.params {
			t.Errorf("d%d: %d parameters, want %d", c.depth, got, c.params)
		}
		if got := cfg.FLOPsPerToken(); math.Abs(got-c.flops)/c.flops > 1e-3 {
			t.Errorf("d%d: %.6e FLOPs per token, want %.6e", c.depth, got, c.flops)
		}
	}
	if cfg := ConfigForDepth(1, 256, 8); cfg.NHead != 1 || cfg.NEmbd != 64 {
		t.Errorf("d1: %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{SequenceLen: 8, VocabSize: 16, NLayer: 1, NHead: 4, NKVHead: 2, NEmbd: 16}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"zero layers":          {SequenceLen: 8, VocabSize: 16, NLayer: 0, NHead: 4, NKVHead: 2, NEmbd: 16},
		"heads do not divide":  {SequenceLen: 8, VocabSize: 16, NLayer: 1, NHead: 3, NKVHead: 1, NEmbd: 16},
		"kv heads not divisor": {SequenceLen: 8, VocabSize: 16, NLayer: 1, NHead: 4, NKVHead: 3, NEmbd: 16},
		"odd head dim":         {SequenceLen: 8, VocabSize: 16, NLayer: 1, NHead: 4, NKVHead: 4, NEmbd: 12},
		"huge sequence":        {SequenceLen: 1 << 40, VocabSize: 16, NLayer: 1, NHead: 4, NKVHead: 2, NEmbd: 16},
		"huge depth":           {SequenceLen: 8, VocabSize: 16, NLayer: 1 << 30, NHead: 4, NKVHead: 2, NEmbd: 16},
		"huge vocabulary":      {SequenceLen: 8, VocabSize: 1 << 40, NLayer: 1, NHead: 4, NKVHead: 2, NEmbd: 16},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v validated", name, c)
		}
	}
}

// TestInitWeights checks nanochat's initialisation: standard deviations per matrix, the
// zeroed ones, and determinism by seed.
func TestInitWeights(t *testing.T) {
	cfg := Config{SequenceLen: 16, VocabSize: 512, NLayer: 2, NHead: 4, NKVHead: 1, NEmbd: 128}
	w := InitWeights(cfg, 7)
	if err := cfg.Check(w); err != nil {
		t.Fatal(err)
	}
	std := func(x []float32) float64 {
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s / float64(len(x)))
	}
	c := float64(cfg.NEmbd)
	for name, want := range map[string]float64{
		"transformer.wte.weight":             1,
		"transformer.h.0.attn.c_q.weight":    1 / math.Sqrt(c),
		"transformer.h.1.attn.c_k.weight":    math.Sqrt(32/c) / math.Sqrt(c), // fan_out 32 < fan_in 128
		"transformer.h.0.mlp.c_fc.weight":    1 / math.Sqrt(c),
		"transformer.h.0.attn.c_proj.weight": 0,
		"transformer.h.1.mlp.c_proj.weight":  0,
		"lm_head.weight":                     0,
	} {
		got := std(w[name])
		if math.Abs(got-want) > 0.05*want || (want == 0 && got != 0) {
			t.Errorf("%s: std %.4f, want %.4f", name, got, want)
		}
	}
	again := InitWeights(cfg, 7)
	other := InitWeights(cfg, 8)
	if again["transformer.wte.weight"][5] != w["transformer.wte.weight"][5] || other["transformer.wte.weight"][5] == w["transformer.wte.weight"][5] {
		t.Error("initialisation is not determined by the seed")
	}
}
