package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gochat/internal/atomicfile"
	"gochat/safetensors"
)

// The files of a tokenizer folder.
const (
	TiktokenFile   = "tokenizer.tiktoken"      // the mergeable tokens, tiktoken's format
	SpecialsFile   = "special_tokens.json"     // special token → id
	TokenBytesFile = "token_bytes.safetensors" // "token_bytes": int64 [vocab], 0 for specials
	PickleFile     = "tokenizer.pkl"           // nanochat's own: a pickled tiktoken Encoding
)

// Save writes the tokenizer's folder (created if needed), each file atomically.
func (t *Tokenizer) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := t.WriteTiktoken(filepath.Join(dir, TiktokenFile)); err != nil {
		return err
	}
	specials, err := json.MarshalIndent(t.special, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, SpecialsFile), func(f *os.File) error {
		_, err := f.Write(append(specials, '\n'))
		return err
	}); err != nil {
		return err
	}
	tb := t.TokenBytes()
	if err := safetensors.Write(filepath.Join(dir, TokenBytesFile),
		map[string]safetensors.Tensor{"token_bytes": safetensors.I64(tb, len(tb))}, nil); err != nil {
		return err
	}
	return t.WriteHF(filepath.Join(dir, HFFile))
}

// Load reads a tokenizer folder written by Save, checking that its special tokens are
// nanochat's with the ids that follow the mergeable tokens; or a nanochat tokenizer folder,
// whose tokenizer.pkl it imports.
func Load(dir string) (*Tokenizer, error) {
	if _, err := os.Stat(filepath.Join(dir, TiktokenFile)); os.IsNotExist(err) {
		if _, err := os.Stat(filepath.Join(dir, PickleFile)); err == nil {
			return ImportPickle(filepath.Join(dir, PickleFile))
		}
	}
	t, err := ReadTiktoken(filepath.Join(dir, TiktokenFile))
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, SpecialsFile))
	if err != nil {
		return nil, err
	}
	var specials map[string]int
	if err := json.Unmarshal(raw, &specials); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SpecialsFile), err)
	}
	if len(specials) != len(t.special) {
		return nil, fmt.Errorf("%s: %d special tokens, want nanochat's %d", dir, len(specials), len(t.special))
	}
	for name, id := range t.special {
		if specials[name] != id {
			return nil, fmt.Errorf("%s: special token %s has id %d, want %d", dir, name, specials[name], id)
		}
	}
	return t, nil
}
