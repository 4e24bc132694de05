package tokenizer

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkEncode encodes Go's strings package with the go-1200 tokenizer, on one core.
func BenchmarkEncode(b *testing.B) {
	tok, err := Load("../testdata/tokenizer/go-1200")
	if err != nil {
		b.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "net", "http", "*.go"))
	var text []byte
	for _, f := range files {
		t, _ := os.ReadFile(f)
		text = append(text, t...)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(string(text))
	}
}
