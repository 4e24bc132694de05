package tokenizer

import (
	"fmt"
	"os"

	"gochat/internal/pickle"
)

// ImportPickle reads nanochat's tokenizer.pkl: a pickled tiktoken Encoding, whose state is
// the dict {"name", "pat_str", "mergeable_ranks": {bytes: rank}, "special_tokens":
// {str: id}}. The ranks must be 0..n−1 and the special tokens nanochat's, with the ids that
// follow. Only the pickle opcodes such a file uses are understood; anything else is an error.
func ImportPickle(path string) (*Tokenizer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := pickle.Unpickle(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	enc, ok := v.(*pickle.Call)
	if !ok {
		return nil, fmt.Errorf("%s: not a pickled tiktoken Encoding", path)
	}
	dict, ok := enc.State.(pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: not a pickled tiktoken Encoding", path)
	}
	ranks, ok := dict["mergeable_ranks"].(pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: no mergeable_ranks", path)
	}
	tokens := make([][]byte, len(ranks))
	for k, v := range ranks {
		b, okK := k.(pickle.Bytes)
		rank, okV := v.(int)
		if !okK || !okV || rank < 0 || rank >= len(tokens) || tokens[rank] != nil {
			return nil, fmt.Errorf("%s: mergeable rank %v of %q is not a new rank below %d", path, v, k, len(tokens))
		}
		tokens[rank] = []byte(b)
	}
	tok, err := New(tokens)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	specials, _ := dict["special_tokens"].(pickle.Dict)
	if len(specials) != len(SpecialTokens) {
		return nil, fmt.Errorf("%s: %d special tokens, want nanochat's %d", path, len(specials), len(SpecialTokens))
	}
	for name, id := range tok.special {
		if specials[name] != id {
			return nil, fmt.Errorf("%s: special token %s has id %v, want %d", path, name, specials[name], id)
		}
	}
	return tok, nil
}
