package graph

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gochat/cpubackend"
	"gochat/tokenizer"
)

// TestQuantize scores Go source the golden d2 model did not train on (this file's own
// package, which its corpus of Go's strings and bytes packages leaves out) with float32 and
// with int8 weights: int8 reads a quarter of the bytes and its loss is within 1% of
// float32's (the bound on bits per byte, the same ratio); quantizing twice changes
// nothing; a token decoded alone gets the logits it gets in a prompt; the float32
// generation model scores as the Eval graph does, to 1e-4.
func TestQuantize(t *testing.T) {
	dir := "../testdata/golden/core/model"
	w, err := ReadWeights(filepath.Join(dir, "model_000400.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{SequenceLen: 256, VocabSize: 2048, NLayer: 2, NHead: 1, NKVHead: 1, NEmbd: 128}
	src, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "sort", "sort.go"))
	if err != nil {
		t.Fatal(err)
	}
	bos, _ := tok.Special("<|bos|>")
	ids := append([]int{bos}, tok.Encode(string(src))...)
	const rows, T = 4, 256
	if len(ids) < rows*T+1 {
		t.Fatalf("%d tokens of text, want %d", len(ids), rows*T+1)
	}
	in, targets := ids[:rows*T], ids[1:rows*T+1]
	loss := func(m *Cached) float64 {
		s := &CachedScorer{Model: m, Rows: rows, SeqLen: T}
		first, err := s.TokenLosses(in, targets)
		if err != nil {
			t.Fatal(err)
		}
		first = slices.Clone(first)
		losses, err := s.TokenLosses(in, targets) // on the emptied cache
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(first, losses) {
			t.Fatal("a second batch through the scorer's cache scores otherwise than the first")
		}
		var sum float64
		for _, l := range losses {
			sum += float64(l)
		}
		return sum / float64(len(losses))
	}
	e := cpubackend.New(nil)
	f32, err := NewCached(cfg, w, e)
	if err != nil {
		t.Fatal(err)
	}
	q8, _ := NewCached(cfg, w, e)
	if err := q8.Quantize(); err != nil {
		t.Fatal(err)
	}
	a, b := loss(f32), loss(q8)
	t.Logf("loss %.5f float32, %.5f int8 (%+.3f%%); weights read a token %d and %d bytes", a, b, 100*(b/a-1), f32.WeightBytes(), q8.WeightBytes())
	if rel := math.Abs(b/a - 1); !(rel < 0.01) || a == b {
		t.Errorf("int8 changes the loss by %.3f%% (%.5f against %.5f): want a change under 1%%", 100*rel, b, a)
	}
	if r := float64(q8.WeightBytes()) / float64(f32.WeightBytes()); r > 0.27 {
		t.Errorf("int8 weights take %.2f of float32's bytes", r)
	}
	// One token at a time (int8 rows read directly) gives the logits of a whole prompt
	// (float32 blocks of the int8 rows), to float32 rounding.
	whole, err := q8.ForwardAll(q8.NewKVCache(1, 16), in[:16], 16)
	if err != nil {
		t.Fatal(err)
	}
	c := q8.NewKVCache(1, 16)
	for i := range 16 {
		step, err := q8.Forward(c, in[i:i+1], 1)
		if err != nil {
			t.Fatal(err)
		}
		row := whole[i*cfg.VocabSize : (i+1)*cfg.VocabSize]
		for v := range row {
			if math.Abs(float64(step[v]-row[v])) > 1e-4*(1+math.Abs(float64(row[v]))) {
				t.Fatalf("token %d, logit %d: %g decoded, %g in the prompt", i, v, step[v], row[v])
			}
		}
	}

	// The generation model scores as the Eval graph does.
	g, err := Build(cfg, Options{Batch: rows, SeqLen: T, Mode: Eval, Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Load(w); err != nil {
		t.Fatal(err)
	}
	want, err := g.TokenLosses(in, targets)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := (&CachedScorer{Model: f32, Rows: rows, SeqLen: T}).TokenLosses(in, targets)
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Abs(float64(want[i]))+1e-5 {
			t.Fatalf("position %d: the generation model's loss %g, the Eval graph's %g", i, got[i], want[i])
		}
	}
	// The int8 weights saved and read back: the same model, a byte a weight.
	path := filepath.Join(t.TempDir(), "model.int8.safetensors")
	if err := f32.WriteInt8(path); err == nil {
		t.Error("a float32 model wrote int8 weights")
	}
	if err := q8.WriteInt8(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadCachedInt8(path, cfg, e)
	if err != nil {
		t.Fatal(err)
	}
	if got := loss(back); got != b {
		t.Errorf("the int8 weights read back score %.6f, before saving %.6f", got, b)
	}
	// A byte a weight and four a row's scale, the embedding's four a weight, and a header.
	embedding := cfg.VocabSize * cfg.NEmbd
	scales := 0
	for _, p := range cfg.Params()[1:] {
		scales += p.Shape[0]
	}
	if small, _ := os.Stat(path); small.Size() > int64(4*embedding+(cfg.NumParams()-embedding)+4*scales+8192) {
		t.Errorf("the int8 file takes %d bytes", small.Size())
	}
	other := cfg
	other.NLayer = 3
	if _, err := ReadCachedInt8(path, other, e); err == nil {
		t.Error("int8 weights of 2 layers read as 3")
	}
	if _, err := ReadCachedInt8(filepath.Join(dir, "model_000400.safetensors"), cfg, e); err == nil || !strings.Contains(err.Error(), "not a file of int8 weights") {
		t.Errorf("a float32 file read as int8: %v", err)
	}

	if err := q8.Quantize(); err != nil || loss(q8) != b {
		t.Errorf("quantizing again changes the model (%v)", err)
	}
}
