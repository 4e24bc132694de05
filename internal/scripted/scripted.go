// Package scripted makes models whose next token depends only on the current one, through
// their weights alone: token i is the i-th axis of the embedding, the blocks add nothing,
// and lm_head sends axis i to the logit of next[i]. Greedy generation with such a model
// writes a script, which is how tests drive the sampler, the chat and the web server.
package scripted

import (
	"gochat/graph"
	"gochat/tokenizer"
)

// Tokenizer is the byte-level tokenizer with no merges: the 256 bytes and nanochat's
// special tokens, 265 in all.
func Tokenizer() *tokenizer.Tokenizer {
	tok, err := tokenizer.New(tokenizer.ByteTokens())
	if err != nil {
		panic(err) // the 256 bytes always make a tokenizer
	}
	return tok
}

// Model returns the config and weights of a model over vocab tokens, with positions for
// seqLen·10 tokens, in which token i is followed by next(i); next returns -1 for tokens
// with no successor (their logits are all zero).
func Model(vocab, seqLen int, next func(int) int) (graph.Config, graph.Weights) {
	width := (vocab + 15) / 16 * 16 // one axis per token; n_head 1, so any even width
	cfg := graph.Config{SequenceLen: seqLen, VocabSize: vocab, NLayer: 1, NHead: 1, NKVHead: 1, NEmbd: width}
	w := graph.InitWeights(cfg, 1)
	for _, p := range w {
		clear(p)
	}
	for i := range vocab {
		w["transformer.wte.weight"][i*width+i] = 1
		if j := next(i); j >= 0 {
			w["lm_head.weight"][j*width+i] = 1
		}
	}
	return cfg, w
}
