package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestImportPickle reads the tokenizer.pkl that tiktoken pickled (as nanochat does) from
// the go-1200 vocabulary: the same tokens, the same encodings.
func TestImportPickle(t *testing.T) {
	tok, err := ImportPickle("../testdata/tokenizer/tokenizer.pkl")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Load("../testdata/tokenizer/go-1200")
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != want.VocabSize() || !slices.EqualFunc(tok.tokens, want.tokens, slices.Equal) {
		t.Fatalf("imported %d tokens, the folder has %d", tok.VocabSize(), want.VocabSize())
	}
	text := "I'm importing nanochat's tokenizer.pkl: 123 héllo"
	if !slices.Equal(tok.Encode(text), want.Encode(text)) {
		t.Fatal("the imported tokenizer encodes differently")
	}
	// A nanochat tokenizer folder (tokenizer.pkl, no tiktoken file) loads as it is.
	dir := t.TempDir()
	raw, _ := os.ReadFile("../testdata/tokenizer/tokenizer.pkl")
	os.WriteFile(filepath.Join(dir, PickleFile), raw, 0o644)
	folder, err := Load(dir)
	if err != nil || folder.VocabSize() != want.VocabSize() {
		t.Fatalf("nanochat folder: %v", err)
	}
}

func TestImportPickleRejectsDamage(t *testing.T) {
	raw, err := os.ReadFile("../testdata/tokenizer/tokenizer.pkl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"truncated":  raw[:len(raw)/2],
		"empty":      nil,
		"not pickle": []byte("hello, world"),
		"no stop":    raw[:len(raw)-1],
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, err := ImportPickle(p); err == nil {
			t.Errorf("%s: imported", name)
		}
	}
}

// FuzzImportPickle: any file gives a tokenizer or an error, never a panic.
func FuzzImportPickle(f *testing.F) {
	raw, _ := os.ReadFile("../testdata/tokenizer/tokenizer.pkl")
	f.Add(raw)
	f.Add(raw[:100])
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.pkl")
		os.WriteFile(p, data, 0o644)
		ImportPickle(p)
	})
}
