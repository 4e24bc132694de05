// Package graph builds nanochat's GPT as a Gorgonia expression graph: the configuration and
// its depth rule, the parameters under nanochat's names with nanochat's initialisation, the
// training graph (loss and symbolic gradients) and the inference graph (logits).
package graph

import "fmt"

// Config is nanochat's GPTConfig. The JSON names are nanochat's, so a nanochat meta.json's
// model_config reads directly.
type Config struct {
	SequenceLen int `json:"sequence_len"`
	VocabSize   int `json:"vocab_size"`
	NLayer      int `json:"n_layer"`
	NHead       int `json:"n_head"`
	NKVHead     int `json:"n_kv_head"`
	NEmbd       int `json:"n_embd"`
}

// RotaryBase is the rotary embedding's base frequency.
const RotaryBase = 10000

// LogitSoftcap bounds the logits: z = 15·tanh(l/15).
const LogitSoftcap = 15

// ConfigForDepth applies base_train's depth rule: model_dim = 64·depth, heads of 128
// (n_head = ceil(model_dim/128)), as many kv heads as heads.
func ConfigForDepth(depth, vocabSize, sequenceLen int) Config {
	dim := 64 * depth
	heads := max(1, (dim+127)/128)
	return Config{SequenceLen: sequenceLen, VocabSize: vocabSize, NLayer: depth, NHead: heads, NKVHead: heads, NEmbd: dim}
}

// Validate reports a configuration the model cannot be built from.
func (c Config) Validate() error {
	switch {
	case c.SequenceLen <= 0 || c.VocabSize <= 0 || c.NLayer <= 0 || c.NHead <= 0 || c.NKVHead <= 0 || c.NEmbd <= 0:
		return fmt.Errorf("config %+v: every field must be positive", c)
	case c.SequenceLen > MaxSequenceLen || c.NLayer > MaxLayers || c.NEmbd > MaxEmbd || c.VocabSize > MaxVocab:
		return fmt.Errorf("config %+v: beyond gochat's bounds (sequence_len ≤ %d, n_layer ≤ %d, n_embd ≤ %d, vocab_size ≤ %d)",
			c, MaxSequenceLen, MaxLayers, MaxEmbd, MaxVocab)
	case c.NEmbd%c.NHead != 0:
		return fmt.Errorf("config: n_embd %d is not a multiple of n_head %d", c.NEmbd, c.NHead)
	case (c.NEmbd/c.NHead)%2 != 0:
		return fmt.Errorf("config: head dim %d must be even for rotary embeddings", c.NEmbd/c.NHead)
	case c.NHead%c.NKVHead != 0:
		return fmt.Errorf("config: n_kv_head %d does not divide n_head %d", c.NKVHead, c.NHead)
	}
	return nil
}

// Bounds of a config, far beyond what gochat trains (nanochat's d20: sequence 2048, 20
// layers, n_embd 1280, a 65,536 vocabulary) but small enough that nothing sized by a config
// overflows or asks for absurd memory before the weights are checked against it.
const (
	MaxSequenceLen = 1 << 16
	MaxLayers      = 1 << 10
	MaxEmbd        = 1 << 16
	MaxVocab       = 1 << 24
)

// HeadDim is the size of one attention head.
func (c Config) HeadDim() int { return c.NEmbd / c.NHead }

// RotaryLen is the number of positions the rotary table covers: ten times the sequence
// length, as nanochat precomputes.
func (c Config) RotaryLen() int { return 10 * c.SequenceLen }

// NumParams counts every parameter, both embeddings included.
func (c Config) NumParams() int {
	n := 0
	for _, p := range c.Params() {
		n += p.Shape[0] * p.Shape[1]
	}
	return n
}

// FLOPsPerToken is nanochat's estimate_flops: 6 per matrix parameter except the token
// embedding (a lookup), plus attention's 12·layers·heads·head_dim·sequence_len.
func (c Config) FLOPsPerToken() float64 {
	matrix := c.NumParams() - c.VocabSize*c.NEmbd
	return 6*float64(matrix) + 12*float64(c.NLayer*c.NHead*c.HeadDim()*c.SequenceLen)
}
