package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPack(t *testing.T) {
	src := t.TempDir()
	var want []string
	for i := 0; i < 30; i++ {
		text := fmt.Sprintf("file %d\n%s", i, string(make([]byte, 100)))
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d.txt", i)), []byte(text), 0o644)
		want = append(want, text)
	}
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "lines.jsonl"), []byte("{\"text\": \"one\"}\n\n{\"text\": \"two\", \"id\": 2}\n"), 0o644)
	os.WriteFile(filepath.Join(src, "skip.bin"), []byte("binary"), 0o644)
	want = append(want, "one", "two")
	out := filepath.Join(t.TempDir(), "base_data")
	paths, err := Pack([]string{src}, out, PackOptions{Include: []string{"*.txt", "*.jsonl"}, ShardChars: 1000, ValDocs: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, p := range paths {
		s, err := OpenShard(p)
		if err != nil {
			t.Fatal(err)
		}
		docs, _ := s.ReadRowGroup(0)
		s.Close()
		if i == len(paths)-1 && len(docs) != 5 {
			t.Errorf("validation shard has %d documents, want 5", len(docs))
		}
		chars := 0
		for _, d := range docs {
			chars += len(d)
		}
		if i < len(paths)-1 && chars > 1000 && len(docs) > 1 {
			t.Errorf("shard %d holds %d characters", i, chars)
		}
		got = append(got, docs...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(paths) < 3 {
		t.Fatalf("%d shards; documents differ: %d packed, %d given", len(paths), len(got), len(want))
	}
	again, _ := Pack([]string{src}, t.TempDir(), PackOptions{Include: []string{"*.txt", "*.jsonl"}, ShardChars: 1000, ValDocs: 5, Seed: 1})
	if len(again) != len(paths) {
		t.Error("packing is not deterministic")
	}
}

func TestPackErrors(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "bad.jsonl"), []byte("{\"text\": 1}\n"), 0o644)
	if _, err := Pack([]string{src}, t.TempDir(), PackOptions{}); err == nil {
		t.Error("a JSONL line without a text string packed")
	}
	os.Remove(filepath.Join(src, "bad.jsonl"))
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	if _, err := Pack([]string{src}, t.TempDir(), PackOptions{ValDocs: 1}); err == nil {
		t.Error("one document packed with one for validation")
	}
	if _, err := Pack([]string{filepath.Join(src, "missing")}, t.TempDir(), PackOptions{}); err == nil {
		t.Error("a missing source packed")
	}
}
