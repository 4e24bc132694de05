// Package tokenizer is nanochat's byte-level BPE tokenizer. This file splits text into the
// chunks BPE works within, as nanochat's GPT-4-style pattern does.
package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// SplitPattern is nanochat's split pattern (GPT-4's, with \p{N}{1,2} instead of {1,3}), for
// reference and for files that record it: Split implements it by hand, because Go's regexp
// has neither the lookahead (?!\S) nor possessive quantifiers.
const SplitPattern = `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`

// Split cuts text into the pattern's successive matches; their concatenation is text.
// Invalid UTF-8 bytes count as symbols (neither letters, numbers nor spaces) and stay in
// the chunks as they are.
func Split(text string) []string {
	var chunks []string
	for i := 0; i < len(text); {
		n := matchAt(text, i)
		chunks = append(chunks, text[i:i+n])
		i += n
	}
	return chunks
}

// class is what the pattern distinguishes about a character.
type class int

const (
	letter class = iota
	number
	newline // \r or \n, which are also spaces
	space
	other
)

func classify(r rune) class {
	switch {
	case r == '\r' || r == '\n':
		return newline
	case unicode.IsLetter(r):
		return letter
	case unicode.IsNumber(r):
		return number
	case unicode.IsSpace(r):
		return space
	}
	return other
}

// at decodes the character at byte i: its class and width (1 for an invalid byte).
func at(text string, i int) (class, int) {
	r, w := utf8.DecodeRuneInString(text[i:])
	if r == utf8.RuneError && w <= 1 {
		return other, 1
	}
	return classify(r), w
}

// matchAt returns the length of the pattern's match at byte i (always at least one
// character: every character is matched by some alternative).
func matchAt(text string, i int) int {
	if n := contraction(text, i); n > 0 {
		return n
	}
	c, w := at(text, i)
	// [^\r\n\p{L}\p{N}]?+\p{L}+
	if c == letter {
		return w + run(text, i+w, letter)
	}
	if c == space || c == other {
		if c2, _ := safeAt(text, i+w); c2 == letter && i+w < len(text) {
			return w + run(text, i+w, letter)
		}
	}
	// \p{N}{1,2}
	if c == number {
		if c2, w2 := safeAt(text, i+w); c2 == number && i+w < len(text) {
			return w + w2
		}
		return w
	}
	// ' ?[^\s\p{L}\p{N}]++[\r\n]*'
	start := i
	if text[i] == ' ' {
		start = i + 1
	}
	if start < len(text) {
		if c2, _ := at(text, start); c2 == other {
			end := start + run(text, start, other)
			return end + run(text, end, newline) - i
		}
	}
	// Whitespace: \s*[\r\n], then \s+(?!\S), then \s+.
	ws := run(text, i, space, newline)
	lastNewline := -1
	for j := i; j < i+ws; {
		cj, wj := at(text, j)
		if cj == newline {
			lastNewline = j + wj
		}
		j += wj
	}
	if lastNewline > 0 {
		return lastNewline - i
	}
	if i+ws == len(text) {
		return ws
	}
	if last := lastCharStart(text, i, i+ws); last > i {
		return last - i // give back the last space: it belongs to the next chunk
	}
	return ws
}

// contraction matches '(?i:[sdmt]|ll|ve|re) at byte i, returning its length or 0. Case
// folding is Unicode's, as in the Rust regex nanochat uses: ſ (U+017F) folds to s.
func contraction(text string, i int) int {
	if text[i] != '\'' || i+1 >= len(text) {
		return 0
	}
	r, w := utf8.DecodeRuneInString(text[i+1:])
	switch r {
	case 's', 'S', 'ſ', 'd', 'D', 'm', 'M', 't', 'T':
		return 1 + w
	}
	if i+2 < len(text) {
		pair := string(unicode.ToLower(rune(text[i+1]))) + string(unicode.ToLower(rune(text[i+2])))
		if pair == "ll" || pair == "ve" || pair == "re" {
			return 3
		}
	}
	return 0
}

// safeAt is at that answers other past the end of the text.
func safeAt(text string, i int) (class, int) {
	if i >= len(text) {
		return other, 0
	}
	return at(text, i)
}

// run is the length in bytes of the longest run from byte i of characters of the classes.
func run(text string, i int, classes ...class) int {
	j := i
	for j < len(text) {
		c, w := at(text, j)
		if !contains(classes, c) {
			break
		}
		j += w
	}
	return j - i
}

func contains(cs []class, c class) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// lastCharStart is the byte where the last character of text[from:to] starts.
func lastCharStart(text string, from, to int) int {
	_, w := utf8.DecodeLastRuneInString(text[from:to])
	return to - max(w, 1)
}
