package checkpoint

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/safetensors"
	"gochat/sampler"
	"gochat/tokenizer"
)

// hfFixture is what transformers computed with the exported golden run
// (testdata/hf/make_fixture.py): logits of two rows, a greedy generation and a chat
// template's ids.
const hfFixture = "../testdata/hf/transformers.safetensors"

// TestHFTransformers checks gochat against transformers on the exported golden run: the
// logits of two rows of 24 tokens to 1e-5 relative (float32 both, eager attention on a CPU),
// the greedy continuation of 8 tokens token for token as `gochat sample -t 0` makes it, and
// the chat template's ids equal to RenderForCompletion's.
func TestHFTransformers(t *testing.T) {
	fixture, meta, err := safetensors.Read(hfFixture)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("made with transformers %s, torch %s", meta["transformers"], meta["torch"])
	run := filepath.Join(t.TempDir(), "run")
	tok, err := ImportHF(exportGolden(t), run)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := Load(run, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ck.Meta.ModelConfig
	ints := func(name string) []int {
		v, err := fixture[name].Ints()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	ids, want := ints("ids"), fixture["logits"]
	wantLogits, err := want.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.NewCached(cfg, ck.Weights, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	B, T := 2, len(ids)/2
	c := m.NewKVCache(B, T)
	got, err := m.ForwardAll(c, ids, T)
	if err != nil {
		t.Fatal(err)
	}
	var diff, norm float64
	for i := range wantLogits {
		d := float64(got[i] - wantLogits[i])
		diff, norm = diff+d*d, norm+float64(wantLogits[i])*float64(wantLogits[i])
	}
	rel := math.Sqrt(diff / norm)
	t.Logf("logits: %.2e relative to transformers'", rel)
	if !(rel <= 1e-5) || len(got) != len(wantLogits) {
		t.Errorf("logits differ from transformers' by %.2e relative (%d values, want %d)", rel, len(got), len(wantLogits))
	}

	greedy := ints("greedy")
	gen, err := sampler.NewGenerator(m, tok)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := gen.Continuations(context.Background(), greedy[:8], sampler.Settings{MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	hf := greedy[8:]
	for i, id := range hf { // transformers' generation ends on an eos, which Continuations leaves out
		if sp, _ := tok.Special("<|bos|>"); id == sp {
			hf = hf[:i]
			break
		}
		if sp, _ := tok.Special("<|assistant_end|>"); id == sp {
			hf = hf[:i]
			break
		}
	}
	if !slices.Equal(rows[0], hf) {
		t.Errorf("greedy continuation %v, transformers' %v", rows[0], hf)
	}

	conv := tokenizer.Conversation{Messages: []tokenizer.Message{{Role: "system", Text: "Answer briefly."},
		{Role: "user", Text: "What is Go?"}, {Role: "assistant", Text: "A programming language."}, {Role: "user", Text: "Who made it?"},
		{Role: "assistant"}}} // the reply to come, which RenderForCompletion leaves out
	prompt, err := tok.RenderForCompletion(conv)
	if err != nil {
		t.Fatal(err)
	}
	if chat := ints("chat_ids"); !slices.Equal(prompt, chat) {
		t.Errorf("the chat template gives %v, gochat %v", chat, prompt)
	}
}
