package tokenizer

import (
	"bytes"
	"slices"
	"testing"
)

// merges of a small test vocabulary, in the order BPE training could have made them: each
// pair of ids makes the next id, from 256 on.
var testMerges = [][2]int{
	{'t', 'h'}, // 256 "th"
	{256, 'e'}, // 257 "the"
	{' ', 't'}, // 258 " t"
	{' ', 257}, // 259 " the"
	{'e', 'r'}, // 260 "er"
	{257, 'r'}, // 261 "ther"
	{'a', 'a'}, // 262 "aa"
	{262, 262}, // 263 "aaaa"
}

func testTokenizer(t testing.TB) *Tokenizer {
	tokens := ByteTokens()
	for _, m := range testMerges {
		tokens = append(tokens, append(slices.Clone(tokens[m[0]]), tokens[m[1]]...))
	}
	tok, err := New(tokens)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// encodeByMerges is rustbpe's formulation of encoding: start from bytes and apply the merge
// of lowest new id among adjacent id pairs (merge i makes id 256+i), leftmost first, until
// none applies.
func encodeByMerges(merges [][2]int, text string) []int {
	newID := map[[2]int]int{}
	for i, m := range merges {
		newID[m] = 256 + i
	}
	var out []int
	for _, chunk := range Split(text) {
		ids := make([]int, len(chunk))
		for i := 0; i < len(chunk); i++ {
			ids[i] = int(chunk[i])
		}
		for {
			best, at := -1, -1
			for k := 0; k+1 < len(ids); k++ {
				if id, ok := newID[[2]int{ids[k], ids[k+1]}]; ok && (best < 0 || id < best) {
					best, at = id, k
				}
			}
			if at < 0 {
				break
			}
			ids = append(append(ids[:at:at], best), ids[at+2:]...)
		}
		out = append(out, ids...)
	}
	return out
}

func TestEncodeExamples(t *testing.T) {
	tok := testTokenizer(t)
	for text, want := range map[string][]int{
		"the":        {257},
		" the":       {259},
		" to":        {258, 'o'},
		"hthe":       {'h', 257},
		"there":      {261, 'e'},
		"aaaaa":      {263, 'a'},
		"<|bos|>":    {'<', '|', 'b', 'o', 's', '|', '>'},
		"":           nil,
		"the\xffthe": {257, 0xff, 257},
	} {
		if got := tok.Encode(text); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", text, got, want)
		}
	}
	if bos, _ := tok.Special("<|bos|>"); bos != 264 || tok.VocabSize() != 273 {
		t.Errorf("bos %d, vocab %d", bos, tok.VocabSize())
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"the other there", "aaaaaaa", " the the", "<|assistant_end|>", "\xff\x00 th"} {
		f.Add(s)
	}
	tok := testTokenizer(f)
	f.Fuzz(func(t *testing.T, text string) {
		ids := tok.Encode(text)
		if want := encodeByMerges(testMerges, text); !slices.Equal(ids, want) {
			t.Fatalf("Encode(%q) = %v, reference merge %v", text, ids, want)
		}
		for _, id := range ids {
			if id >= len(tok.tokens) {
				t.Fatalf("Encode(%q) produced special token %d", text, id)
			}
		}
		back, err := tok.Decode(ids)
		if err != nil || !bytes.Equal(back, []byte(text)) {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", text, back, err)
		}
	})
}

func TestDecodeAndTokenBytes(t *testing.T) {
	tok := testTokenizer(t)
	bos, _ := tok.Special("<|bos|>")
	got, err := tok.Decode([]int{bos, 259, 'x'})
	if err != nil || string(got) != "<|bos|> thex" {
		t.Fatalf("Decode = %q, %v", got, err)
	}
	for _, bad := range []int{-1, tok.VocabSize()} {
		if _, err := tok.Decode([]int{bad}); err == nil {
			t.Errorf("id %d decoded", bad)
		}
	}
	tb := tok.TokenBytes()
	if tb['a'] != 1 || tb[259] != 4 || tb[263] != 4 || tb[bos] != 0 || len(tb) != tok.VocabSize() {
		t.Fatalf("token bytes %v", tb[250:])
	}
	if _, err := tok.Special("<|nope|>"); err == nil {
		t.Error("unknown special token found")
	}
}

func TestNewRejectsBadVocabularies(t *testing.T) {
	short := make([][]byte, 100)
	if _, err := New(short); err == nil {
		t.Error("100 tokens accepted")
	}
	tokens := append(ByteTokens(), []byte("a")) // a duplicate of byte 97
	if _, err := New(tokens); err == nil {
		t.Error("duplicate token accepted")
	}
	tokens[256] = []byte("ab")
	tokens[3] = []byte("x")
	if _, err := New(tokens); err == nil {
		t.Error("wrong byte token accepted")
	}
}

func TestEncodeBatch(t *testing.T) {
	tok := testTokenizer(t)
	bos, _ := tok.Special("<|bos|>")
	texts := []string{"the", "", "aaaaa there", "x"}
	got := tok.EncodeBatch(texts, []int{bos}, []int{7})
	for i, text := range texts {
		want := append(append([]int{bos}, tok.Encode(text)...), 7)
		if !slices.Equal(got[i], want) {
			t.Errorf("text %d: %v, want %v", i, got[i], want)
		}
	}
}

// TestCacheStaysBounded: a stream of more distinct words than the cache holds empties it
// instead of growing it, and encodings stay those of the merge rule.
func TestCacheStaysBounded(t *testing.T) {
	tok := testTokenizer(t)
	word := func(i int) string {
		b := []byte(" aathe")
		for ; i > 0; i /= 26 {
			b = append(b, byte('a'+i%26))
		}
		return string(b)
	}
	for i := range maxCached + 1000 {
		tok.Encode(word(i))
		if n := tok.cached.Load(); n > maxCached {
			t.Fatalf("%d cache entries after %d words", n, i+1)
		}
	}
	for _, i := range []int{0, 5, maxCached + 999} {
		if got, want := tok.Encode(word(i)), encodeByMerges(testMerges, word(i)); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", word(i), got, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a, b := testTokenizer(t), testTokenizer(t)
	if a.Fingerprint() != b.Fingerprint() || len(a.Fingerprint()) != 16 {
		t.Fatalf("equal vocabularies: %q and %q", a.Fingerprint(), b.Fingerprint())
	}
	tokens := slices.Clone(a.tokens)
	tokens[len(tokens)-1], tokens[len(tokens)-2] = tokens[len(tokens)-2], tokens[len(tokens)-1]
	c, err := New(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() == a.Fingerprint() {
		t.Error("two vocabularies with the ranks of two tokens swapped share a fingerprint")
	}
}
