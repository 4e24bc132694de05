package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// oracle is nanochat's pattern run by a backtracking regex engine, with the possessive
// quantifiers written as the atomic groups they are equivalent to.
var oracle = regexp2.MustCompile(
	`'(?i:[sdmt]|ll|ve|re)|(?>[^\r\n\p{L}\p{N}]?)\p{L}+|\p{N}{1,2}| ?(?>[^\s\p{L}\p{N}]+)[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`,
	regexp2.None)

func oracleSplit(t *testing.T, text string) []string {
	var chunks []string
	m, err := oracle.FindStringMatch(text)
	for ; m != nil && err == nil; m, err = oracle.FindNextMatch(m) {
		chunks = append(chunks, m.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return chunks
}

func TestSplitExamples(t *testing.T) {
	for text, want := range map[string][]string{
		"Hello world":      {"Hello", " world"},
		"  hello":          {" ", " hello"},
		"I'm you'LL we've": {"I", "'m", " you", "'LL", " we", "'ve"},
		"x'ſ":              {"x", "'ſ"}, // Unicode case folding: ſ is s
		"12345 abc":        {"12", "34", "5", " abc"},
		"a!!!\n\nb":        {"a", "!!!\n\n", "b"},
		"end   ":           {"end", "   "},
		"a \t\n  b":        {"a", " \t\n", " ", " b"},
		"!hello ?!":        {"!hello", " ?!"},
		"café naïve":       {"café", " naïve"},
		"\xff\xfeab":       {"\xff\xfe", "ab"}, // one symbol may lead letters, two may not
		"":                 nil,
		"東京2024年":          {"東京", "20", "24", "年"},
		"e\u0301x":         {"e", "\u0301x"},
		"tab\tsep":         {"tab", "\tsep"},
	} {
		if got := Split(text); !slices.Equal(got, want) {
			t.Errorf("Split(%q) = %q, want %q", text, got, want)
		}
	}
}

// FuzzSplitMatchesRegex checks the hand-written splitter against the regex on any valid
// UTF-8 text (the oracle turns invalid bytes into U+FFFD; Split keeps them) without ſ
// (.NET's case-insensitive match does not fold it, Rust's does: TestSplitExamples checks it).
func FuzzSplitMatchesRegex(f *testing.F) {
	for _, s := range []string{"Hello world", "  x", "I'm 123456 !!\n\n ", "a \t\n  b", "\u00a0\u2028x y", "'RE's", "１２３", " 'll'", "x\r\n\r\n y\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Join(Split(text), "") != text {
			t.Fatalf("chunks of %q do not join back", text)
		}
		if !utf8.ValidString(text) || strings.ContainsRune(text, 'ſ') {
			return
		}
		if got, want := Split(text), oracleSplit(t, text); !slices.Equal(got, want) {
			t.Fatalf("Split(%q) = %q, regex %q", text, got, want)
		}
	})
}
