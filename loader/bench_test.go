package loader

import (
	"path/filepath"
	"runtime"
	"testing"

	"gochat/tokenizer"
)

// BenchmarkLoader measures the loader's throughput in tokens per second (tok/s) with a
// 32,768-token vocabulary trained on part of Go's source tree, cutting nanochat's d20
// geometry (B=32 rows of T=2048) from shards packed from that tree. The figure is the
// loader alone, tokenizing on every processor.
func BenchmarkLoader(b *testing.B) {
	src := filepath.Join(runtime.GOROOT(), "src")
	dir := b.TempDir()
	opt := PackOptions{Include: []string{"*.go"}, ShardChars: 20_000_000, ValDocs: 100, Seed: 1}
	packed, err := Pack([]string{filepath.Join(src, "net"), filepath.Join(src, "crypto"), filepath.Join(src, "runtime")}, dir, opt)
	paths := packed.Paths
	if err != nil {
		b.Fatal(err)
	}
	var docs []string
	for _, p := range paths[:len(paths)-1] {
		s, err := OpenShard(p)
		if err != nil {
			b.Fatal(err)
		}
		for g := range s.RowGroups() {
			rg, _ := s.ReadRowGroup(g)
			docs = append(docs, rg...)
		}
		s.Close()
	}
	tok, err := tokenizer.Train(docs, tokenizer.TrainOptions{VocabSize: 32768, DocCap: 100_000, MaxChars: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	l, err := NewLoader(paths[:len(paths)-1], tok, 32, 2048, 0, 1, Position{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	tokens := 0
	for b.Loop() {
		in, _, err := l.Next()
		if err != nil {
			b.Fatal(err)
		}
		tokens += len(in)
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
}
