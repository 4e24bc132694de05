package tokenizer

import "unicode/utf8"

// StreamDecoder turns ids into text as they are generated, holding back the bytes of a
// UTF-8 character until it is complete, so that a chat never shows half a character.
type StreamDecoder struct {
	tok     *Tokenizer
	pending []byte
}

// NewStreamDecoder decodes with tok.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{tok: t} }

// Push adds one id and returns the text that is now complete (possibly empty). Bytes that
// can never start a valid character are passed on as they are.
func (d *StreamDecoder) Push(id int) (string, error) {
	b, err := d.tok.Decode([]int{id})
	if err != nil {
		return "", err
	}
	d.pending = append(d.pending, b...)
	n := 0
	for n < len(d.pending) {
		if !utf8.FullRune(d.pending[n:]) {
			break // a character that the next token may complete
		}
		_, w := utf8.DecodeRune(d.pending[n:])
		n += w
	}
	out := string(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out, nil
}

// Flush returns whatever is held back, complete or not.
func (d *StreamDecoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}
