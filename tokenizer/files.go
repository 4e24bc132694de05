package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"

	"gochat/internal/atomicfile"
)

// WriteTiktoken writes the mergeable tokens in tiktoken's own format, one per line: the
// token's bytes in base64, a space, its rank. The file is written atomically.
func (t *Tokenizer) WriteTiktoken(path string) error {
	return atomicfile.Write(path, func(f *os.File) error {
		w := bufio.NewWriter(f)
		for id, tok := range t.tokens {
			fmt.Fprintf(w, "%s %d\n", base64.StdEncoding.EncodeToString(tok), id)
		}
		return w.Flush()
	})
}

// ReadTiktoken reads a tiktoken file into a tokenizer. The ranks must be 0..n−1, each once.
func ReadTiktoken(path string) (*Tokenizer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
	tokens := make([][]byte, len(lines))
	for i, line := range lines {
		fields := bytes.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"base64 rank\", got %q", path, i+1, line)
		}
		tok, err := base64.StdEncoding.DecodeString(string(fields[0]))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		rank, err := strconv.Atoi(string(fields[1]))
		if err != nil || rank < 0 || rank >= len(tokens) || tokens[rank] != nil {
			return nil, fmt.Errorf("%s:%d: rank %q is not a new rank below %d", path, i+1, fields[1], len(tokens))
		}
		tokens[rank] = tok
	}
	tk, err := New(tokens)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tk, nil
}
