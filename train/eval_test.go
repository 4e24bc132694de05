package train

import (
	"context"
	"strings"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/loader"
)

// TestBPBReadsEachTokenOnce: an evaluation asked for more batches than the shards hold reads
// each of their tokens once and stops; EvalSteps says beforehand how many batches that is.
func TestBPBReadsEachTokenOnce(t *testing.T) {
	data, tok := fixture(t)
	_, val, err := loader.Split(data)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 2, 32
	total, err := loader.Tokens([]string{val}, tok, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	if part, _ := loader.Tokens([]string{val}, tok, 100); part != 100 {
		t.Errorf("Tokens up to 100 of %d: %d", total, part)
	}
	whole := total / (B*T + 1) // each batch takes B·T+1 tokens
	steps, err := EvalSteps([]string{val}, tok, B, T, 1<<20)
	if err != nil || steps != whole {
		t.Fatalf("EvalSteps: %d, %v; the shard holds %d tokens, %d batches", steps, err, total, whole)
	}
	if few, _ := EvalSteps([]string{val}, tok, B, T, 3); few != 3 {
		t.Errorf("EvalSteps of 3 batches: %d", few)
	}
	if _, err := EvalSteps([]string{val}, tok, 1, total, 1); err == nil || !strings.Contains(err.Error(), "less than one batch") {
		t.Errorf("a batch larger than the shard: %v", err)
	}

	cfg := graph.ConfigForDepth(1, tok.VocabSize(), T)
	m, err := graph.Build(cfg, graph.Options{Batch: B, SeqLen: T, Mode: graph.Eval, Engine: cpubackend.New(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(graph.InitWeights(cfg, 1)); err != nil {
		t.Fatal(err)
	}
	var calls int
	exact, err := BPB(context.Background(), m, []string{val}, tok, whole, func(done, total int) { calls++ })
	if err != nil || calls != whole {
		t.Fatalf("BPB over the whole shard: %v after %d of %d batches", err, calls, whole)
	}
	calls = 0
	more, err := BPB(context.Background(), m, []string{val}, tok, whole+5, func(done, total int) { calls++ })
	if err != nil || calls != whole || more != exact {
		t.Errorf("asked for 5 batches more than the shard holds: bpb %v after %d batches, %v; the whole shard gives %v", more, calls, err, exact)
	}
}
