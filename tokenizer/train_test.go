package tokenizer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var corpus = []string{
	"the cat sat on the mat. the cat ate the rat.",
	"There the other three thought that they'd thrive.",
	"aaaa aaaa aaaa bbbb 12345 12345",
	"Go is expressive, concise, clean, and efficient.",
}

// mergeEncoder encodes with the merges training made, in their order.
func mergeEncoder(t *testing.T, tok *Tokenizer) func(string) []int {
	if len(tok.merges) != len(tok.tokens)-256 {
		t.Fatalf("%d merges for %d tokens", len(tok.merges), len(tok.tokens))
	}
	return func(text string) []int { return encodeByMerges(tok.merges, text) }
}

func TestTrain(t *testing.T) {
	tok, err := Train(corpus, TrainOptions{VocabSize: 256 + 40 + len(SpecialTokens)})
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 256+40+len(SpecialTokens) {
		t.Fatalf("vocabulary %d", tok.VocabSize())
	}
	// The most frequent pair of the corpus's chunks is "th" (and " t"? count them below).
	counts := map[[2]byte]int{}
	for _, d := range corpus {
		for _, c := range Split(d) {
			for i := 0; i+1 < len(c); i++ {
				counts[[2]byte{c[i], c[i+1]}]++
			}
		}
	}
	var best [2]byte
	for pr, n := range counts {
		if n > counts[best] || (n == counts[best] && (pr[0] < best[0] || pr[0] == best[0] && pr[1] < best[1])) {
			best = pr
		}
	}
	if !bytes.Equal(tok.tokens[256], best[:]) {
		t.Fatalf("first merge %q, the most frequent pair is %q", tok.tokens[256], best[:])
	}
	encode := mergeEncoder(t, tok)
	for _, text := range append(corpus, "thermal thatch", "aaaaaaaaa", "   the   ") {
		if got, want := tok.Encode(text), encode(text); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, merge order gives %v", text, got, want)
		}
		back, _ := tok.Decode(tok.Encode(text))
		if string(back) != text {
			t.Errorf("round trip of %q gave %q", text, back)
		}
	}
	if n := len(tok.Encode(corpus[0])); n >= len(corpus[0]) {
		t.Errorf("%d tokens for %d bytes: nothing was learned", n, len(corpus[0]))
	}
}

func TestTrainOptions(t *testing.T) {
	if _, err := Train(corpus, TrainOptions{VocabSize: 260}); err == nil {
		t.Error("a vocabulary below 256 + 9 accepted")
	}
	empty, err := Train(nil, TrainOptions{VocabSize: 300})
	if err != nil || empty.VocabSize() != 256+len(SpecialTokens) {
		t.Errorf("empty input: %v, vocabulary %d (no pair to merge: bytes and specials only)", err, empty.VocabSize())
	}
	var calls, last, total int
	if _, err := Train(corpus, TrainOptions{VocabSize: 256 + 50 + len(SpecialTokens), Progress: func(d, t int) {
		calls, last, total = calls+1, d, t
	}}); err != nil || calls < 2 || last != 50 || total != 50 {
		t.Errorf("progress: %d calls, last %d of %d (%v)", calls, last, total, err)
	}
	c := NewCounter(TrainOptions{DocCap: 4, MaxChars: 6})
	docs := c.capDocs([]string{"héllo world", "abc", "never"})
	if strings.Join(docs, "|") != "héll|ab" || c.Add([]string{"more"}) {
		t.Errorf("capped documents %q; more wanted after MaxChars", docs)
	}
}

// TestCounterInBatches: counting a corpus in batches trains the tokenizer counting it
// whole trains, with the caps spanning batches.
func TestCounterInBatches(t *testing.T) {
	var corpus []string
	for i := range 300 {
		corpus = append(corpus, fmt.Sprintf("document %d: the quick brown fox %d jumps over the lazy dog %d times", i, i*7, i%13))
	}
	opt := TrainOptions{VocabSize: 400, DocCap: 50, MaxChars: 9000}
	whole, err := Train(corpus, opt)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCounter(opt)
	for i := 0; i < len(corpus) && c.Add(corpus[i:min(i+7, len(corpus))]); i += 7 {
	}
	batched, err := c.Train()
	if err != nil {
		t.Fatal(err)
	}
	if batched.Fingerprint() != whole.Fingerprint() {
		t.Error("training on batches gave another vocabulary")
	}
}

// TestTrainedEncodingMatchesMerges trains 800 merges on Go's own strings and bytes packages
// and checks that encoding by lowest rank (tiktoken's rule) gives what applying the
// training's merges in order gives (rustbpe's), on every file.
func TestTrainedEncodingMatchesMerges(t *testing.T) {
	var docs []string
	for _, pkg := range []string{"strings", "bytes"} {
		files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", pkg, "*.go"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(b))
		}
	}
	if len(docs) < 10 {
		t.Fatalf("found %d Go files under GOROOT", len(docs))
	}
	tok, err := Train(docs, TrainOptions{VocabSize: 256 + 800 + len(SpecialTokens)})
	if err != nil {
		t.Fatal(err)
	}
	encode := mergeEncoder(t, tok)
	var bytesIn, tokens int
	for _, d := range docs {
		got := tok.Encode(d)
		if !slices.Equal(got, encode(d)) {
			t.Fatalf("a file encodes differently by rank and by merge order")
		}
		bytesIn, tokens = bytesIn+len(d), tokens+len(got)
	}
	if ratio := float64(bytesIn) / float64(tokens); ratio < 2 {
		t.Fatalf("%.2f bytes per token after 800 merges", ratio)
	}
}
