package train_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/loader"
	"gochat/sampler"
	"gochat/tokenizer"
	"gochat/train"
)

// bytesTokenizer is a tokenizer of single bytes and nanochat's special tokens.
func bytesTokenizer() *tokenizer.Tokenizer {
	tok, err := tokenizer.New(tokenizer.ByteTokens())
	if err != nil {
		panic(err)
	}
	return tok
}

// A d1 model trained 60 steps with nanochat's recipe (Muon and AdamW) on one sentence,
// repeated, then asked to continue its start greedily with the KV-cached generator, which
// stops where the model ends the text.
func ExampleTrainer() {
	tok := bytesTokenizer()
	const rows, seqLen = 2, 32
	cfg := graph.ConfigForDepth(1, tok.VocabSize(), seqLen)
	engine := cpubackend.New(nil)
	model, err := graph.Build(cfg, graph.Options{Batch: rows, SeqLen: seqLen, Mode: graph.Train, Engine: engine})
	if err != nil {
		panic(err)
	}
	if err := model.Load(graph.InitWeights(cfg, 42)); err != nil {
		panic(err)
	}
	trainer, err := train.NewTrainer(model, train.DefaultRecipe(60), engine)
	if err != nil {
		panic(err)
	}
	text := tok.Encode(strings.Repeat("the cat sat on the mat. ", 10))
	batch := train.Batch{IDs: make([]int, rows*seqLen), Targets: make([]int, rows*seqLen)}
	for r := range rows {
		copy(batch.IDs[r*seqLen:], text[r*7:r*7+seqLen])
		copy(batch.Targets[r*seqLen:], text[r*7+1:r*7+seqLen+1])
	}
	var first, last float64
	for step := range 60 {
		res, err := trainer.Step([]train.Batch{batch})
		if err != nil {
			panic(err)
		}
		if step == 0 {
			first = res.Loss
		}
		last = res.Loss
	}
	fmt.Printf("loss %.1f at the first step, under 0.5 at the last: %v\n", first, last < 0.5)

	weights, err := model.HostWeights() // the host's copy: a GPU's memory is its own
	if err != nil {
		panic(err)
	}
	cached, err := graph.NewCached(cfg, weights, engine)
	if err != nil {
		panic(err)
	}
	gen, err := sampler.NewGenerator(cached, tok)
	if err != nil {
		panic(err)
	}
	bos, _ := tok.Special("<|bos|>")
	rowsOut, _, err := gen.Continuations(context.Background(), append([]int{bos}, tok.Encode("the cat")...), sampler.Settings{MaxTokens: 16})
	if err != nil {
		panic(err)
	}
	reply, _ := tok.Decode(rowsOut[0])
	fmt.Printf("the cat%s\n", reply)
	// Output:
	// loss 5.6 at the first step, under 0.5 at the last: true
	// the cat sat on the mat.
}

// The validation loss in bits per byte, nanochat's evaluate_bpb, of a fresh model on a
// shard of text: it predicts every one of its 265 tokens alike, and each token is a byte,
// so it is log2 265 bits per byte.
func ExampleBPB() {
	tok := bytesTokenizer()
	shard := filepath.Join(os.TempDir(), "gochat-example-bpb.parquet")
	defer os.Remove(shard)
	if err := loader.WriteShard(shard, []string{strings.Repeat("Bits per byte compare models across tokenizers. ", 20)}); err != nil {
		panic(err)
	}
	const rows, seqLen = 2, 64
	cfg := graph.ConfigForDepth(1, tok.VocabSize(), seqLen)
	model, err := graph.Build(cfg, graph.Options{Batch: rows, SeqLen: seqLen, Mode: graph.Eval, Engine: cpubackend.New(nil)})
	if err != nil {
		panic(err)
	}
	if err := model.Load(graph.InitWeights(cfg, 42)); err != nil {
		panic(err)
	}
	steps, err := train.EvalSteps([]string{shard}, tok, rows, seqLen, 4)
	if err != nil {
		panic(err)
	}
	bpb, err := train.BPB(context.Background(), model, []string{shard}, tok, steps, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d batches: %.4f bits per byte\n", steps, bpb)
	// Output:
	// 4 batches: 8.0498 bits per byte
}
