package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMergesFromRanks: the merges recovered from ranks alone (as for a tiktoken file) are
// the ones training made.
func TestMergesFromRanks(t *testing.T) {
	trained, err := Train(corpus, TrainOptions{VocabSize: 256 + 60 + len(SpecialTokens)})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := New(trained.tokens)
	if err != nil {
		t.Fatal(err)
	}
	got, err := loaded.Merges()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, trained.merges) {
		t.Fatalf("recovered merges %v, trained %v", got, trained.merges)
	}
}

// TestWriteHF checks the file's structure: every token in the vocabulary under its
// byte-level spelling, one merge per token above 256, the special tokens added.
func TestWriteHF(t *testing.T) {
	tok, err := Load("../testdata/tokenizer/go-1200")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), HFFile)
	if err := tok.WriteHF(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var doc hfFile
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Model.Vocab) != len(tok.tokens) || len(doc.Model.Merges) != len(tok.tokens)-256 || len(doc.AddedTokens) != len(SpecialTokens) {
		t.Fatalf("vocab %d, merges %d, added %d", len(doc.Model.Vocab), len(doc.Model.Merges), len(doc.AddedTokens))
	}
	runes := byteRunes()
	if doc.Model.Vocab[string(runes[' '])+"the"] != tok.ranks[" the"] || doc.Model.Vocab["Ġ"] != ' ' {
		t.Fatal("byte-level spellings are not GPT-2's")
	}
	if doc.AddedTokens[0].Content != "<|bos|>" || doc.AddedTokens[0].ID != len(tok.tokens) {
		t.Fatalf("first added token %+v", doc.AddedTokens[0])
	}
	back, err := ReadHF(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(back.tokens, tok.tokens, slices.Equal) || back.VocabSize() != tok.VocabSize() {
		t.Fatal("tokenizer.json does not read back to the same tokens")
	}
	for name, edit := range map[string]string{
		"not json":    "{",
		"not bpe":     `{"model": {"type": "WordPiece", "vocab": {}}}`,
		"not bytes":   `{"model": {"type": "BPE", "vocab": {"\u4e16": 0}}}`,
		"no specials": strings.Replace(string(raw), `"<|bos|>"`, `"<|nope|>"`, 1),
	} {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(edit), 0o644)
		if _, err := ReadHF(p); err == nil {
			t.Errorf("%s: read", name)
		}
	}
}
