package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"gochat/internal/parallel"
)

// SpecialTokens are nanochat's special tokens, in the order their ids follow the mergeable
// tokens.
var SpecialTokens = []string{
	"<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
	"<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>",
}

// Tokenizer is a byte-level BPE: token i of the mergeable part is the byte string tokens[i],
// and its id is also its merge rank (tiktoken's convention); the special tokens follow.
type Tokenizer struct {
	tokens  [][]byte
	ranks   map[string]int
	special map[string]int
	cache   sync.Map     // chunk → []int, for frequent chunks
	cached  atomic.Int64 // entries in cache
	merges  [][2]int     // the pairs that made tokens 256…, when the tokenizer was trained here
}

// ByteTokens are the first 256 tokens of every vocabulary, in rank order: the single bytes
// 0..255. New(ByteTokens()) is the byte-level tokenizer with no merges; append merged
// tokens to have more.
func ByteTokens() [][]byte {
	tokens := make([][]byte, 256)
	for i := range tokens {
		tokens[i] = []byte{byte(i)}
	}
	return tokens
}

// New makes a tokenizer from its mergeable tokens in rank order; the first 256 must be the
// single bytes 0..255. The special tokens get the ids after them.
func New(tokens [][]byte) (*Tokenizer, error) {
	if len(tokens) < 256 {
		return nil, fmt.Errorf("tokenizer: %d mergeable tokens, want at least the 256 bytes", len(tokens))
	}
	t := &Tokenizer{tokens: tokens, ranks: make(map[string]int, len(tokens)), special: map[string]int{}}
	for id, tok := range tokens {
		if id < 256 && (len(tok) != 1 || int(tok[0]) != id) {
			return nil, fmt.Errorf("tokenizer: token %d is %q, want the single byte %d", id, tok, id)
		}
		if len(tok) == 0 {
			return nil, fmt.Errorf("tokenizer: token %d is empty", id)
		}
		if prev, dup := t.ranks[string(tok)]; dup {
			return nil, fmt.Errorf("tokenizer: tokens %d and %d are both %q", prev, id, tok)
		}
		t.ranks[string(tok)] = id
	}
	for i, s := range SpecialTokens {
		t.special[s] = len(tokens) + i
	}
	return t, nil
}

// VocabSize counts the mergeable and the special tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) + len(SpecialTokens) }

// Fingerprint identifies the vocabulary: the first 16 hex digits of a SHA-256 over the
// tokens in id order (each length-prefixed) and the special tokens. Two tokenizers with
// the same fingerprint encode every text alike.
func (t *Tokenizer) Fingerprint() string {
	h := sha256.New()
	for _, tok := range t.tokens {
		binary.Write(h, binary.LittleEndian, uint32(len(tok)))
		h.Write(tok)
	}
	for _, s := range SpecialTokens {
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Special returns the id of a special token such as "<|bos|>".
func (t *Tokenizer) Special(name string) (int, error) {
	id, ok := t.special[name]
	if !ok {
		return 0, fmt.Errorf("tokenizer: no special token %q", name)
	}
	return id, nil
}

// Encode turns text into ids: split into chunks, each merged by lowest rank. Text that looks
// like a special token is encoded as ordinary text, never as the special token.
func (t *Tokenizer) Encode(text string) []int {
	var ids []int
	for _, chunk := range Split(text) {
		ids = append(ids, t.encodeChunk(chunk)...)
	}
	return ids
}

// maxCachedChunk bounds the chunks kept in the cache (long ones rarely repeat), and
// maxCached its entries (about 25 MiB): a full cache is emptied and starts again, so that
// a long stream of text cannot grow it without bound.
const (
	maxCachedChunk = 32
	maxCached      = 1 << 18
)

func (t *Tokenizer) encodeChunk(chunk string) []int {
	if id, ok := t.ranks[chunk]; ok {
		return []int{id}
	}
	if len(chunk) <= maxCachedChunk {
		if ids, ok := t.cache.Load(chunk); ok {
			return ids.([]int)
		}
	}
	ids := t.merge([]byte(chunk), len(t.tokens))
	if len(chunk) <= maxCachedChunk {
		if t.cached.Add(1) > maxCached {
			t.cache.Clear()
			t.cached.Store(0)
		}
		t.cache.Store(chunk, ids)
	}
	return ids
}

// merge is tiktoken's rule: while some adjacent pair of parts forms a token of rank below
// limit, merge the pair whose token has the lowest rank (the leftmost on ties).
func (t *Tokenizer) merge(b []byte, limit int) []int {
	bounds := make([]int, len(b)+1) // part k is b[bounds[k]:bounds[k+1]]
	for i := range bounds {
		bounds[i] = i
	}
	for len(bounds) > 2 {
		best, at := -1, -1
		for k := 0; k+2 < len(bounds); k++ {
			if r, ok := t.ranks[string(b[bounds[k]:bounds[k+2]])]; ok && r < limit && (best < 0 || r < best) {
				best, at = r, k
			}
		}
		if at < 0 {
			break
		}
		bounds = append(bounds[:at+1], bounds[at+2:]...)
	}
	ids := make([]int, len(bounds)-1)
	for k := range ids {
		ids[k] = t.ranks[string(b[bounds[k]:bounds[k+1]])]
	}
	return ids
}

// Decode returns the bytes of ids (a special token decodes to its name). It fails on an id
// outside the vocabulary.
func (t *Tokenizer) Decode(ids []int) ([]byte, error) {
	var out bytes.Buffer
	for i, id := range ids {
		switch {
		case id >= 0 && id < len(t.tokens):
			out.Write(t.tokens[id])
		case id >= len(t.tokens) && id < t.VocabSize():
			out.WriteString(SpecialTokens[id-len(t.tokens)])
		default:
			return nil, fmt.Errorf("tokenizer: id %d at position %d is outside the vocabulary of %d", id, i, t.VocabSize())
		}
	}
	return out.Bytes(), nil
}

// TokenBytes is each token's length in bytes, 0 for the special tokens: what bits per byte
// divides by. (nanochat's first release counted U+FFFD replacements instead; this is the
// corrected definition.)
func (t *Tokenizer) TokenBytes() []int {
	n := make([]int, t.VocabSize())
	for id, tok := range t.tokens {
		n[id] = len(tok)
	}
	return n
}

// EncodeBatch encodes texts on all cores, each as prepend + Encode(text) + appendIDs
// (either may be nil; the loader prepends <|bos|>).
func (t *Tokenizer) EncodeBatch(texts []string, prepend, appendIDs []int) [][]int {
	out := make([][]int, len(texts))
	parallel.Each(len(texts), parallel.Workers(), func(i, _ int) {
		ids := append(slices.Clone(prepend), t.Encode(texts[i])...)
		out[i] = append(ids, appendIDs...)
	})
	return out
}
