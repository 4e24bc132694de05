package train

import (
	"fmt"
	"math"

	"gochat/graph"
	"gochat/loader"
	"gochat/tokenizer"
)

// BPB is nanochat's evaluate_bpb: the model's loss in bits per byte of text over steps
// batches from the start of shards, which makes it comparable across vocabularies. Each
// target token counts its bytes (tokenizer.TokenBytes); targets of zero bytes (the special
// tokens) are left out of both sums. m is an Eval graph.
func BPB(m *graph.Model, shards []string, tok *tokenizer.Tokenizer, steps int) (float64, error) {
	if m.Mode != graph.Eval {
		return 0, fmt.Errorf("bpb: needs an Eval graph")
	}
	ld, err := loader.NewLoader(shards, tok, m.Batch, m.SeqLen, 0, 1, loader.Position{})
	if err != nil {
		return 0, err
	}
	defer ld.Close()
	tokenBytes := tok.TokenBytes()
	var nats float64
	var bytes int
	for range steps {
		ids, targets, err := ld.Next()
		if err != nil {
			return 0, err
		}
		if err := m.Run(ids, targets); err != nil {
			return 0, err
		}
		for i, loss := range m.Output() {
			if nb := tokenBytes[targets[i]]; nb > 0 {
				nats += float64(loss)
				bytes += nb
			}
		}
	}
	if bytes == 0 {
		return 0, fmt.Errorf("bpb: the evaluation batches hold no text")
	}
	return nats / (math.Ln2 * float64(bytes)), nil
}
