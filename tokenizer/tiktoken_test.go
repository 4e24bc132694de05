package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestMatchesTiktoken compares Encode with tiktoken itself: testdata/tokenizer/go-1200 is a
// tokenizer trained by gochat, and tiktoken_ids.json holds what tiktoken (with nanochat's
// split pattern and that vocabulary) made of texts.json, on the test machine (tiktoken 0.14).
// tokenizer.pkl beside them is that tiktoken Encoding pickled as nanochat pickles it.
func TestMatchesTiktoken(t *testing.T) {
	tok, err := Load("../testdata/tokenizer/go-1200")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var want struct {
		Tiktoken string  `json:"tiktoken"`
		IDs      [][]int `json:"ids"`
	}
	for file, v := range map[string]any{"texts.json": &texts, "tiktoken_ids.json": &want} {
		raw, err := os.ReadFile("../testdata/tokenizer/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatal(err)
		}
	}
	if len(texts) != len(want.IDs) || len(texts) == 0 {
		t.Fatalf("%d texts, %d encodings", len(texts), len(want.IDs))
	}
	for i, text := range texts {
		if got := tok.Encode(text); !slices.Equal(got, want.IDs[i]) {
			t.Errorf("text %d %q:\n gochat   %v\n tiktoken %v", i, text, got, want.IDs[i])
		}
	}
}
