package tokenizer

import (
	"encoding/binary"
	"fmt"
	"os"
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
	state, err := unpickle(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dict, ok := state.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("%s: not a pickled tiktoken Encoding", path)
	}
	ranks, ok := dict["mergeable_ranks"].(map[any]any)
	if !ok {
		return nil, fmt.Errorf("%s: no mergeable_ranks", path)
	}
	tokens := make([][]byte, len(ranks))
	for k, v := range ranks {
		b, okK := k.(string)
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
	specials, _ := dict["special_tokens"].(map[any]any)
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

// object is what unpickle makes of a class instance: the pickle gives its state to BUILD.
type object struct{ state any }

// unpickle runs the pickle machine for the opcodes a pickled tiktoken Encoding uses and
// returns the top object's state (or the top value). Byte strings come back as Go strings,
// text as Go strings, integers as int.
func unpickle(data []byte) (any, error) {
	var stack []any
	var marks []int
	memo := map[int]any{}
	pop := func() (any, error) {
		if len(stack) == 0 {
			return nil, fmt.Errorf("pickle: stack underflow")
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		return v, nil
	}
	need := func(i, n int) ([]byte, error) {
		if i+n > len(data) || n < 0 {
			return nil, fmt.Errorf("pickle: truncated at byte %d", i)
		}
		return data[i : i+n], nil
	}
	for i := 0; i < len(data); {
		op := data[i]
		i++
		switch op {
		case 0x80: // PROTO
			i++
		case 0x95: // FRAME
			i += 8
		case 0x8c, 'C': // SHORT_BINUNICODE, SHORT_BINBYTES
			n, err := need(i, 1)
			if err != nil {
				return nil, err
			}
			b, err := need(i+1, int(n[0]))
			if err != nil {
				return nil, err
			}
			stack = append(stack, string(b))
			i += 1 + int(n[0])
		case 'X', 'B': // BINUNICODE, BINBYTES
			n, err := need(i, 4)
			if err != nil {
				return nil, err
			}
			size := int(binary.LittleEndian.Uint32(n))
			b, err := need(i+4, size)
			if err != nil {
				return nil, err
			}
			stack = append(stack, string(b))
			i += 4 + size
		case 'K': // BININT1
			b, err := need(i, 1)
			if err != nil {
				return nil, err
			}
			stack = append(stack, int(b[0]))
			i++
		case 'M': // BININT2
			b, err := need(i, 2)
			if err != nil {
				return nil, err
			}
			stack = append(stack, int(binary.LittleEndian.Uint16(b)))
			i += 2
		case 'J': // BININT
			b, err := need(i, 4)
			if err != nil {
				return nil, err
			}
			stack = append(stack, int(int32(binary.LittleEndian.Uint32(b))))
			i += 4
		case 0x94: // MEMOIZE
			if len(stack) == 0 {
				return nil, fmt.Errorf("pickle: memoize on an empty stack")
			}
			memo[len(memo)] = stack[len(stack)-1]
		case 'h': // BINGET
			b, err := need(i, 1)
			if err != nil {
				return nil, err
			}
			v, ok := memo[int(b[0])]
			if !ok {
				return nil, fmt.Errorf("pickle: no memo %d", b[0])
			}
			stack = append(stack, v)
			i++
		case '}': // EMPTY_DICT
			stack = append(stack, map[any]any{})
		case ')': // EMPTY_TUPLE
			stack = append(stack, []any{})
		case '(': // MARK
			marks = append(marks, len(stack))
		case 'u': // SETITEMS
			if len(marks) == 0 {
				return nil, fmt.Errorf("pickle: setitems without a mark")
			}
			m := marks[len(marks)-1]
			marks = marks[:len(marks)-1]
			if m < 1 || (len(stack)-m)%2 != 0 {
				return nil, fmt.Errorf("pickle: malformed setitems")
			}
			dict, ok := stack[m-1].(map[any]any)
			if !ok {
				return nil, fmt.Errorf("pickle: setitems on a %T", stack[m-1])
			}
			for j := m; j < len(stack); j += 2 {
				switch stack[j].(type) {
				case string, int:
					dict[stack[j]] = stack[j+1]
				default:
					return nil, fmt.Errorf("pickle: a dict key of type %T", stack[j])
				}
			}
			stack = stack[:m]
		case 0x93: // STACK_GLOBAL: module and name, kept as a marker
			name, err1 := pop()
			module, err2 := pop()
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("pickle: stack underflow")
			}
			stack = append(stack, fmt.Sprintf("%v.%v", module, name))
		case 0x81: // NEWOBJ: cls, args → instance
			if _, err := pop(); err != nil {
				return nil, err
			}
			if _, err := pop(); err != nil {
				return nil, err
			}
			stack = append(stack, &object{})
		case 'b': // BUILD: instance, state → instance with state
			state, err := pop()
			if err != nil {
				return nil, err
			}
			if len(stack) == 0 {
				return nil, fmt.Errorf("pickle: build without an instance")
			}
			obj, ok := stack[len(stack)-1].(*object)
			if !ok {
				return nil, fmt.Errorf("pickle: build on a %T", stack[len(stack)-1])
			}
			obj.state = state
		case '.': // STOP
			top, err := pop()
			if err != nil {
				return nil, err
			}
			if obj, ok := top.(*object); ok {
				return obj.state, nil
			}
			return top, nil
		default:
			return nil, fmt.Errorf("pickle: opcode 0x%02x at byte %d is not one a tiktoken Encoding uses", op, i-1)
		}
	}
	return nil, fmt.Errorf("pickle: no STOP")
}
