package loader

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gochat/tokenizer"
)

// testShards writes two shards of n documents each (three row groups for n = 2500).
func testShards(t *testing.T, n int) ([]string, [][]string) {
	dir := t.TempDir()
	var paths []string
	var all [][]string
	for s := 0; s < 2; s++ {
		docs := make([]string, n)
		for i := range docs {
			docs[i] = fmt.Sprintf("shard %d doc %d: the strings package %s", s, i, string(rune('a'+i%26)))
		}
		p := filepath.Join(dir, fmt.Sprintf("shard_%05d.parquet", s))
		if err := WriteShard(p, docs); err != nil {
			t.Fatal(err)
		}
		paths, all = append(paths, p), append(all, docs)
	}
	return paths, all
}

func testTokenizer(t *testing.T) *tokenizer.Tokenizer {
	tok, err := tokenizer.Load("../testdata/tokenizer/go-1200")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// stream is the token stream the loader must cut: for each shard, the row groups of rank
// (stride world), each document as <|bos|> + its tokens.
func stream(tok *tokenizer.Tokenizer, docs [][]string, rank, world int) []int {
	bos, _ := tok.Special("<|bos|>")
	var out []int
	for _, shard := range docs {
		for rg := rank; rg*RowGroupSize < len(shard); rg += world {
			for _, d := range shard[rg*RowGroupSize : min((rg+1)*RowGroupSize, len(shard))] {
				out = append(append(out, bos), tok.Encode(d)...)
			}
		}
	}
	return out
}

func TestLoaderCutsTheStream(t *testing.T) {
	paths, docs := testShards(t, 2500)
	tok := testTokenizer(t)
	for _, rw := range [][2]int{{0, 1}, {1, 2}} {
		want := stream(tok, docs, rw[0], rw[1])
		l, err := NewLoader(paths, tok, 4, 64, rw[0], rw[1], Position{})
		if err != nil {
			t.Fatal(err)
		}
		n := 4*64 + 1
		for k := 0; (k+1)*n <= len(want); k++ {
			in, tg, err := l.Next()
			if err != nil {
				t.Fatal(err)
			}
			w := want[k*n : (k+1)*n]
			if !slices.Equal(in, w[:n-1]) || !slices.Equal(tg, w[1:]) {
				t.Fatalf("rank %d of %d, batch %d differs from the stream", rw[0], rw[1], k)
			}
		}
		// Past the end of the data the loader starts the shards again.
		for l.Position().Epoch == 0 {
			if _, _, err := l.Next(); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
	}
}

// TestLoaderResumes: a loader started from any saved position yields the batches the
// uninterrupted loader yields from there, across documents, row groups, shards and epochs.
func TestLoaderResumes(t *testing.T) {
	paths, _ := testShards(t, 1100)
	tok := testTokenizer(t)
	l, _ := NewLoader(paths, tok, 3, 200, 0, 1, Position{})
	defer l.Close()
	var positions []Position
	var batches [][]int
	for k := 0; k < 150; k++ {
		positions = append(positions, l.Position())
		in, _, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, in)
	}
	if l.Position().Epoch == 0 {
		t.Fatal("150 batches did not reach the second epoch; the test needs less data")
	}
	for _, k := range []int{1, 17, 48, 49, 77, 100, 149} {
		r, err := NewLoader(paths, tok, 3, 200, 0, 1, positions[k])
		if err != nil {
			t.Fatal(err)
		}
		for j := k; j < min(k+3, len(batches)); j++ {
			in, _, err := r.Next()
			if err != nil || !slices.Equal(in, batches[j]) {
				t.Fatalf("resumed at batch %d (%+v): batch %d differs (%v)", k, positions[k], j, err)
			}
		}
		r.Close()
	}
}

func TestLoaderErrors(t *testing.T) {
	paths, _ := testShards(t, 10)
	tok := testTokenizer(t)
	if _, err := NewLoader(nil, tok, 1, 8, 0, 1, Position{}); err == nil {
		t.Error("no shards accepted")
	}
	if _, err := NewLoader(paths, tok, 1, 8, 2, 2, Position{}); err == nil {
		t.Error("rank 2 of 2 accepted")
	}
	// One row group per shard: none for rank 1, which is told so before the first batch.
	if _, err := NewLoader(paths, tok, 1, 8, 1, 2, Position{}); err == nil || !strings.Contains(err.Error(), "use at most 1 ranks") {
		t.Errorf("a rank without row groups: %v", err)
	}
	bad, _ := NewLoader([]string{filepath.Join(t.TempDir(), "missing.parquet")}, tok, 1, 8, 0, 1, Position{})
	if _, _, err := bad.Next(); err == nil {
		t.Error("a missing shard gave a batch")
	}
	// A saved position outside its shard is an error, not a silent skip to the next.
	if _, err := NewLoader(paths, tok, 1, 8, 0, 1, Position{Shard: 1, RowGroup: 5}); err == nil || !strings.Contains(err.Error(), "past the 1 row groups") {
		t.Errorf("a row group past the shard: %v", err)
	}
	far, err := NewLoader(paths, tok, 1, 8, 0, 1, Position{Shard: 1, Doc: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := far.Next(); err == nil || !strings.Contains(err.Error(), "documents of its row group") {
		t.Errorf("a document past the row group: %v", err)
	}
}

// TestRanksShareRowGroups: over an epoch, the ranks of a world read every row group of
// every shard exactly once between them.
func TestRanksShareRowGroups(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, docs := range []int{5 * RowGroupSize, 2*RowGroupSize + 1, 10} { // 5, 3 and 1 row groups
		p := filepath.Join(dir, ShardName(i))
		if err := WriteShard(p, make([]string, docs)); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	tok := testTokenizer(t)
	for _, world := range []int{1, 2, 3, 4} {
		seen := map[[2]int]int{}
		for rank := range world {
			out, stop := make(chan *rowGroup), make(chan struct{})
			r := &reader{shards: paths, tok: tok, rank: rank, world: world}
			go r.run(Position{Shard: 0, RowGroup: rank}, out, stop)
			for g := range out {
				if g.err != nil {
					t.Fatal(g.err)
				}
				if g.epoch > 0 {
					break
				}
				seen[[2]int{g.shard, g.index}]++
			}
			close(stop)
		}
		if len(seen) != 9 {
			t.Errorf("world %d: %d of 9 row groups read", world, len(seen))
		}
		for g, n := range seen {
			if n != 1 {
				t.Errorf("world %d: shard %d row group %d read %d times", world, g[0], g[1], n)
			}
		}
	}
}

func TestLoaderRejectsForeignPositions(t *testing.T) {
	paths, _ := testShards(t, 10)
	tok := testTokenizer(t)
	for _, pos := range []Position{{Shard: 2}, {RowGroup: 1}, {Doc: -1}, {Shard: -1}} {
		if l, err := NewLoader(paths, tok, 1, 8, 0, 2, pos); err == nil {
			l.Close()
			t.Errorf("rank 0 of 2 accepted position %+v", pos)
		}
	}
	l, _ := NewLoader(paths, tok, 1, 8, 0, 1, Position{Doc: 3, Token: 1000})
	defer l.Close()
	if _, _, err := l.Next(); err == nil {
		t.Error("a position past its document's end gave a batch")
	}
}
