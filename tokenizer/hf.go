package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"

	"gochat/internal/atomicfile"
)

// HFFile is the HuggingFace tokenizers file a tokenizer folder also holds.
const HFFile = "tokenizer.json"

// byteRunes is GPT-2's byte-to-character table that HuggingFace's ByteLevel uses: printable
// bytes stand for themselves, the others for characters from U+0100 on.
func byteRunes() [256]rune {
	var table [256]rune
	next := rune(256)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			table[b] = rune(b)
		} else {
			table[b] = next
			next++
		}
	}
	return table
}

// Merges returns the pair of tokens that makes each token from 256 on, in rank order: the
// training's own when the tokenizer was trained here, otherwise found as tiktoken ranks
// imply, by merging the token's bytes with the lower ranks only (two parts remain).
func (t *Tokenizer) Merges() ([][2]int, error) {
	if t.merges != nil {
		return t.merges, nil
	}
	merges := make([][2]int, 0, len(t.tokens)-256)
	for id := 256; id < len(t.tokens); id++ {
		parts := t.merge(t.tokens[id], id)
		if len(parts) != 2 {
			return nil, fmt.Errorf("tokenizer: token %d (%q) is not the merge of two lower-ranked tokens", id, t.tokens[id])
		}
		merges = append(merges, [2]int{parts[0], parts[1]})
	}
	return merges, nil
}

// WriteHF writes a HuggingFace tokenizers file: nanochat's split pattern and the byte-level
// mapping as pre-tokenizers, the vocabulary and merges as a BPE model, the special tokens as
// added tokens. HuggingFace tokenizers then encode as gochat does (checked with tokenizers
// 0.23 on testdata/tokenizer's texts), except that HuggingFace turns special-token text in
// its input into the special tokens, which Encode, like tiktoken's encode_ordinary, never does.
func (t *Tokenizer) WriteHF(path string) error {
	merges, err := t.Merges()
	if err != nil {
		return err
	}
	runes := byteRunes()
	show := func(b []byte) string {
		s := make([]rune, len(b))
		for i, c := range b {
			s[i] = runes[c]
		}
		return string(s)
	}
	vocab := make(map[string]int, len(t.tokens))
	for id, tok := range t.tokens {
		vocab[show(tok)] = id
	}
	pairs := make([][2]string, len(merges))
	for i, m := range merges {
		pairs[i] = [2]string{show(t.tokens[m[0]]), show(t.tokens[m[1]])}
	}
	added := make([]map[string]any, len(SpecialTokens))
	for i, s := range SpecialTokens {
		added[i] = map[string]any{"id": len(t.tokens) + i, "content": s, "single_word": false,
			"lstrip": false, "rstrip": false, "normalized": false, "special": true}
	}
	doc := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added, "normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]string{"Regex": SplitPattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		}},
		"post_processor": nil,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": pairs},
	}
	return atomicfile.Write(path, func(f *os.File) error {
		enc := json.NewEncoder(f)
		enc.SetEscapeHTML(false) // keep <|bos|> readable
		return enc.Encode(doc)
	})
}

// hfFile is the part of a tokenizers file that ReadHF reads.
type hfFile struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
	} `json:"added_tokens"`
	Model struct {
		Type   string         `json:"type"`
		Vocab  map[string]int `json:"vocab"`
		Merges [][2]string    `json:"merges"`
	} `json:"model"`
}

// ReadHF reads a tokenizers file written by WriteHF (or any byte-level BPE whose vocabulary
// holds the 256 bytes first and ranks by id, with nanochat's special tokens after it).
func ReadHF(path string) (*Tokenizer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc hfFile
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Model.Type != "BPE" {
		return nil, fmt.Errorf("%s: model %q, want a BPE", path, doc.Model.Type)
	}
	byteOf := map[rune]byte{}
	for b, r := range byteRunes() {
		byteOf[r] = byte(b)
	}
	tokens := make([][]byte, len(doc.Model.Vocab))
	for s, id := range doc.Model.Vocab {
		if id < 0 || id >= len(tokens) || tokens[id] != nil {
			return nil, fmt.Errorf("%s: id %d of %q is not a new id below %d", path, id, s, len(tokens))
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			c, ok := byteOf[r]
			if !ok {
				return nil, fmt.Errorf("%s: %q is not a byte-level token", path, s)
			}
			b = append(b, c)
		}
		tokens[id] = b
	}
	t, err := New(tokens)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, a := range doc.AddedTokens {
		if id, err := t.Special(a.Content); err != nil || id != a.ID {
			return nil, fmt.Errorf("%s: added token %q with id %d is not nanochat's", path, a.Content, a.ID)
		}
	}
	if len(doc.AddedTokens) != len(SpecialTokens) {
		return nil, fmt.Errorf("%s: %d added tokens, want nanochat's %d", path, len(doc.AddedTokens), len(SpecialTokens))
	}
	return t, nil
}
