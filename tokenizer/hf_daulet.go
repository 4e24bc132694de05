//go:build hftokenizers

package tokenizer

import (
	"fmt"

	hf "github.com/daulet/tokenizers"
)

// HF is any HuggingFace tokenizer, through daulet/tokenizers (cgo and the Rust library
// libtokenizers.a, hence the hftokenizers build tag). It encodes and decodes like a
// Tokenizer, for comparisons such as `gochat tok eval`.
type HF struct{ t *hf.Tokenizer }

// OpenHF loads a tokenizer.json.
func OpenHF(path string) (*HF, error) {
	t, err := hf.FromFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &HF{t}, nil
}

// Encode returns the ids of text, without added special tokens.
func (h *HF) Encode(text string) []int {
	ids, _ := h.t.Encode(text, false)
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

// Decode returns the text of ids.
func (h *HF) Decode(ids []int) string {
	u := make([]uint32, len(ids))
	for i, id := range ids {
		u[i] = uint32(id)
	}
	return h.t.Decode(u, false)
}

// VocabSize is the tokenizer's vocabulary size.
func (h *HF) VocabSize() int { return int(h.t.VocabSize()) }

// Close frees the Rust tokenizer.
func (h *HF) Close() error { return h.t.Close() }
