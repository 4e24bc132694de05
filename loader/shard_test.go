package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func TestShardRoundTrip(t *testing.T) {
	docs := make([]string, 2500)
	for i := range docs {
		docs[i] = fmt.Sprintf("document %d: héllo\n%s", i, string(rune('a'+i%26)))
	}
	docs[7] = "" // empty documents survive too
	path := filepath.Join(t.TempDir(), "shard_00000.parquet")
	if err := WriteShard(path, docs); err != nil {
		t.Fatal(err)
	}
	s, err := OpenShard(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RowGroups() != 3 || s.Documents() != 2500 {
		t.Fatalf("%d row groups, %d documents; want 3 and 2500", s.RowGroups(), s.Documents())
	}
	var got []string
	for i := 0; i < s.RowGroups(); i++ {
		rg, err := s.ReadRowGroup(i)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 && len(rg) != RowGroupSize {
			t.Fatalf("row group %d has %d documents", i, len(rg))
		}
		got = append(got, rg...)
	}
	if !slices.Equal(got, docs) {
		t.Fatal("documents differ after the round trip")
	}
	if _, err := s.ReadRowGroup(3); err == nil {
		t.Fatal("row group 3 of 3 read")
	}
}

func TestOpenShardRejectsDamage(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	if err := WriteShard(good, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	for name, data := range map[string][]byte{
		"truncated":   raw[:len(raw)-10],
		"not parquet": []byte("hello"),
		"empty":       nil,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if s, err := OpenShard(p); err == nil {
			s.Close()
			t.Errorf("%s: opened", name)
		}
	}
	if _, err := OpenShard(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file opened")
	}
}

func TestOpenShardWantsATextColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.parquet")
	f, _ := os.Create(path)
	w := parquet.NewGenericWriter[struct {
		Body string `parquet:"body"`
	}](f)
	w.Write([]struct {
		Body string `parquet:"body"`
	}{{"x"}})
	w.Close()
	f.Close()
	if _, err := OpenShard(path); err == nil {
		t.Fatal("a shard without a text column opened")
	}
}

// TestReadsPyarrowShard reads a shard written by pyarrow with nanochat's settings
// (row_group_size=1024, zstd level 3, no dictionary, no statistics): 2,101 documents.
func TestReadsPyarrowShard(t *testing.T) {
	s, err := OpenShard("../testdata/shards/pyarrow_shard.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RowGroups() != 3 || s.Documents() != 2101 {
		t.Fatalf("%d row groups, %d documents", s.RowGroups(), s.Documents())
	}
	last, err := s.ReadRowGroup(2)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.ReadRowGroup(0)
	if first[0] != "nanochat document 0: héllo 世界" || len(last) != 53 || last[51] != "nanochat document 2099: héllo 世界" || last[52] != "" {
		t.Fatalf("first %q, last group %d documents ending %q", first[0], len(last), last[len(last)-2:])
	}
}
