package train

import (
	"context"
	"fmt"
	"math"

	"gochat/loader"
	"gochat/tokenizer"
)

// EvalSteps is how many batches of B×T tokens an evaluation of shards reads when it is
// asked for steps: steps, or fewer when the shards hold fewer tokens, so that no token is
// read twice. Each batch takes B·T+1 tokens (loader.Loader). It reads (and tokenizes) the
// shards only as far as steps batches reach.
func EvalSteps(shards []string, tok *tokenizer.Tokenizer, B, T, steps int) (int, error) {
	n, err := loader.Tokens(shards, tok, steps*(B*T+1))
	if err != nil {
		return 0, err
	}
	if n < B*T+1 {
		return 0, fmt.Errorf("%d tokens of text, less than one batch of %d×%d+1", n, B, T)
	}
	return min(steps, n/(B*T+1)), nil
}

// Scorer is a model that gives the loss of every position of a batch of its shape: rows of
// tokens, row-major, a target each (IgnoreIndex: none, loss 0).
type Scorer interface {
	Shape() (rows, seqLen int)
	TokenLosses(ids, targets []int) ([]float32, error)
}

// BPB is nanochat's evaluate_bpb: the model's loss in bits per byte of text over steps
// batches from the start of shards, which makes it comparable across vocabularies. Each
// target token counts its bytes (tokenizer.TokenBytes); targets of zero bytes (the special
// tokens) are left out of both sums. m is an Eval graph, or a generation model that scores
// its tokens (graph.CachedScorer: a quantized one). It never reads past the end of the
// shards: a batch that would start over at their first document ends the evaluation
// (EvalSteps says beforehand how many batches there are). progress, when not nil, is called
// after each batch with the batches done and steps. A cancelled ctx ends it after the batch
// under way, with ctx's error.
func BPB(ctx context.Context, m Scorer, shards []string, tok *tokenizer.Tokenizer, steps int, progress func(done, total int)) (float64, error) {
	B, T := m.Shape()
	ld, err := loader.NewLoader(shards, tok, B, T, 0, 1, loader.Position{})
	if err != nil {
		return 0, err
	}
	defer ld.Close()
	return bpbOf(ctx, m, tok, steps, loaderBatches(ld), progress, group{})
}

// loaderBatches are ld's batches, each with whether it is still in the first pass.
func loaderBatches(ld *loader.Loader) func() (Batch, bool, error) {
	return func() (Batch, bool, error) {
		ids, targets, err := ld.Next()
		return Batch{IDs: ids, Targets: targets}, ld.Position().Epoch == 0, err
	}
}

// bpbOf is evaluate_bpb over steps batches from next, which says whether each batch is
// still in the first pass over its data; a batch that is not ends the evaluation, unless
// it is the first. Each rank of g scores its share of the batches (reading them all), and
// the sums are reduced: every rank gets what one process gets.
func bpbOf(ctx context.Context, m Scorer, tok *tokenizer.Tokenizer, steps int, next func() (Batch, bool, error), progress func(done, total int), g group) (float64, error) {
	tokenBytes := tok.TokenBytes()
	var nats, bytes float64
	for step := range steps {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b, first, err := next()
		if err != nil {
			return 0, err
		}
		if !first && step > 0 { // the batch went round to the first document again
			break
		}
		if !g.mine(step) {
			continue
		}
		losses, err := m.TokenLosses(b.IDs, b.Targets)
		if err != nil {
			return 0, err
		}
		for i, loss := range losses {
			if t := b.Targets[i]; t >= 0 && tokenBytes[t] > 0 { // ignored targets count nothing
				nats += float64(loss)
				bytes += float64(tokenBytes[t])
			}
		}
		if progress != nil {
			progress(step+1, steps)
		}
	}
	if err := g.sum(&nats, &bytes); err != nil {
		return 0, err
	}
	if bytes == 0 {
		return 0, fmt.Errorf("bpb: the evaluation batches hold no text")
	}
	return nats / (math.Ln2 * bytes), nil
}
