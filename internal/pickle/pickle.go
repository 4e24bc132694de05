// Package pickle reads Python pickles of plain data (protocols 2 to 5) without running
// anything: classes and functions stay names (Global), their applications stay records
// (Call) for the caller to interpret, and persistent ids (how PyTorch refers to tensor
// storages) come back as Persistent. It is what reading nanochat's tokenizer.pkl and
// PyTorch checkpoints needs.
package pickle

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
)

// Value types: nil (None), bool, int, *big.Int (integers beyond int64), float64, string
// (text), Bytes, Tuple, *List, Dict, Global, *Call, Persistent.
type (
	// Bytes is a Python bytes object (a Go string, so that it can be a dict key).
	Bytes string
	// Tuple is a Python tuple.
	Tuple []any
	// List is a Python list (a pointer: the pickle may append to it after storing it).
	List struct{ Items []any }
	// Dict is a Python dict or OrderedDict; keys are strings, Bytes, ints or bools.
	Dict map[any]any
	// Global names a class or function.
	Global struct{ Module, Name string }
	// Call is a callable applied to arguments (REDUCE, NEWOBJ), with the state BUILD gave it.
	Call struct {
		Func  Global
		Args  Tuple
		State any
	}
	// Persistent is an object the pickle refers to by id, stored outside it.
	Persistent struct{ ID any }
)

// ordered are the callables whose application is a dict the pickle then fills.
var ordered = map[Global]bool{{"collections", "OrderedDict"}: true, {"builtins", "dict"}: true}

// Unpickle decodes a pickle and returns its value.
func Unpickle(data []byte) (any, error) {
	m := machine{data: data, memo: map[int]any{}}
	v, err := m.run()
	if err != nil {
		return nil, fmt.Errorf("pickle: %w", err)
	}
	return v, nil
}

type machine struct {
	data  []byte
	i     int
	stack []any
	marks []int
	memo  map[int]any
}

func (m *machine) take(n int) ([]byte, error) {
	if n < 0 || m.i+n > len(m.data) {
		return nil, fmt.Errorf("truncated at byte %d", m.i)
	}
	b := m.data[m.i : m.i+n]
	m.i += n
	return b, nil
}

func (m *machine) uint(n int) (int, error) {
	b, err := m.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for k := n - 1; k >= 0; k-- {
		v = v<<8 | uint64(b[k])
	}
	if v > math.MaxInt32 && n > 4 {
		return 0, fmt.Errorf("length %d too large", v)
	}
	return int(v), nil
}

func (m *machine) push(v any) { m.stack = append(m.stack, v) }

func (m *machine) pop() (any, error) {
	if len(m.stack) == 0 {
		return nil, fmt.Errorf("stack underflow at byte %d", m.i)
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) == 0 {
		return nil, fmt.Errorf("stack underflow at byte %d", m.i)
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark pops the items above the last mark.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, fmt.Errorf("no mark at byte %d", m.i)
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	if k > len(m.stack) {
		return nil, fmt.Errorf("mark beyond the stack at byte %d", m.i)
	}
	items := append([]any(nil), m.stack[k:]...)
	m.stack = m.stack[:k]
	return items, nil
}

func (m *machine) popN(n int) ([]any, error) {
	if len(m.stack) < n {
		return nil, fmt.Errorf("stack underflow at byte %d", m.i)
	}
	items := append([]any(nil), m.stack[len(m.stack)-n:]...)
	m.stack = m.stack[:len(m.stack)-n]
	return items, nil
}

// line reads up to a newline (the text forms of GLOBAL).
func (m *machine) line() (string, error) {
	for k := m.i; k < len(m.data); k++ {
		if m.data[k] == '\n' {
			s := string(m.data[m.i:k])
			m.i = k + 1
			return s, nil
		}
	}
	return "", fmt.Errorf("truncated at byte %d", m.i)
}

func setItems(target any, kv []any) error {
	d, ok := target.(Dict)
	if !ok {
		return fmt.Errorf("setting items on a %T", target)
	}
	if len(kv)%2 != 0 {
		return fmt.Errorf("an odd number of dict items")
	}
	for k := 0; k < len(kv); k += 2 {
		switch kv[k].(type) {
		case string, Bytes, int, bool:
			d[kv[k]] = kv[k+1]
		default:
			return fmt.Errorf("a dict key of type %T", kv[k])
		}
	}
	return nil
}

func (m *machine) run() (any, error) {
	for m.i < len(m.data) {
		op := m.data[m.i]
		m.i++
		var err error
		switch op {
		case 0x80: // PROTO
			_, err = m.take(1)
		case 0x95: // FRAME
			_, err = m.take(8)
		case '.': // STOP
			return m.pop()
		case '(': // MARK
			m.marks = append(m.marks, len(m.stack))
		case '0': // POP
			_, err = m.pop()
		case '1': // POP_MARK
			_, err = m.popMark()
		case '2': // DUP
			var v any
			if v, err = m.top(); err == nil {
				m.push(v)
			}
		case 'N':
			m.push(nil)
		case 0x88:
			m.push(true)
		case 0x89:
			m.push(false)
		case 'K', 'M': // BININT1, BININT2
			n := 1
			if op == 'M' {
				n = 2
			}
			var v int
			if v, err = m.uint(n); err == nil {
				m.push(v)
			}
		case 'J': // BININT
			var b []byte
			if b, err = m.take(4); err == nil {
				m.push(int(int32(binary.LittleEndian.Uint32(b))))
			}
		case 0x8a: // LONG1: little-endian two's complement
			var n int
			var b []byte
			if n, err = m.uint(1); err == nil {
				if b, err = m.take(n); err == nil {
					m.push(long(b))
				}
			}
		case 'G': // BINFLOAT, big-endian
			var b []byte
			if b, err = m.take(8); err == nil {
				m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			}
		case 0x8c, 'X', 0x8d, 'U', 'T': // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8, SHORT_BINSTRING, BINSTRING
			err = m.text(op)
		case 'C', 'B', 0x8e: // SHORT_BINBYTES, BINBYTES, BINBYTES8
			n := map[byte]int{'C': 1, 'B': 4, 0x8e: 8}[op]
			var size int
			var b []byte
			if size, err = m.uint(n); err == nil {
				if b, err = m.take(size); err == nil {
					m.push(Bytes(b))
				}
			}
		case ')':
			m.push(Tuple{})
		case 't':
			var items []any
			if items, err = m.popMark(); err == nil {
				m.push(Tuple(items))
			}
		case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
			var items []any
			if items, err = m.popN(int(op-0x85) + 1); err == nil {
				m.push(Tuple(items))
			}
		case ']':
			m.push(&List{})
		case 'l':
			var items []any
			if items, err = m.popMark(); err == nil {
				m.push(&List{Items: items})
			}
		case 'a', 'e': // APPEND, APPENDS
			var items []any
			if op == 'a' {
				items, err = m.popN(1)
			} else {
				items, err = m.popMark()
			}
			if err == nil {
				var t any
				if t, err = m.top(); err == nil {
					l, ok := t.(*List)
					if !ok {
						return nil, fmt.Errorf("appending to a %T", t)
					}
					l.Items = append(l.Items, items...)
				}
			}
		case '}':
			m.push(Dict{})
		case 'd':
			var items []any
			if items, err = m.popMark(); err == nil {
				d := Dict{}
				if err = setItems(d, items); err == nil {
					m.push(d)
				}
			}
		case 's', 'u': // SETITEM, SETITEMS
			var kv []any
			if op == 's' {
				kv, err = m.popN(2)
			} else {
				kv, err = m.popMark()
			}
			if err == nil {
				var t any
				if t, err = m.top(); err == nil {
					err = setItems(t, kv)
				}
			}
		case 'c': // GLOBAL
			var module, name string
			if module, err = m.line(); err == nil {
				if name, err = m.line(); err == nil {
					m.push(Global{module, name})
				}
			}
		case 0x93: // STACK_GLOBAL
			var mn []any
			if mn, err = m.popN(2); err == nil {
				module, ok1 := mn[0].(string)
				name, ok2 := mn[1].(string)
				if !ok1 || !ok2 {
					return nil, fmt.Errorf("a global named by %T and %T", mn[0], mn[1])
				}
				m.push(Global{module, name})
			}
		case 'R', 0x81: // REDUCE, NEWOBJ
			var fa []any
			if fa, err = m.popN(2); err == nil {
				f, ok1 := fa[0].(Global)
				args, ok2 := fa[1].(Tuple)
				if !ok1 || !ok2 {
					return nil, fmt.Errorf("calling a %T with %T", fa[0], fa[1])
				}
				if ordered[f] && len(args) == 0 {
					m.push(Dict{})
				} else {
					m.push(&Call{Func: f, Args: args})
				}
			}
		case 'b': // BUILD
			var state, t any
			if state, err = m.pop(); err == nil {
				if t, err = m.top(); err == nil {
					switch obj := t.(type) {
					case *Call:
						obj.State = state
					case Dict: // an OrderedDict's attributes (PyTorch's _metadata): not kept
					default:
						return nil, fmt.Errorf("building a %T", t)
					}
				}
			}
		case 'q', 'r': // BINPUT, LONG_BINPUT
			n := 1
			if op == 'r' {
				n = 4
			}
			var k int
			var v any
			if k, err = m.uint(n); err == nil {
				if v, err = m.top(); err == nil {
					m.memo[k] = v
				}
			}
		case 0x94: // MEMOIZE
			var v any
			if v, err = m.top(); err == nil {
				m.memo[len(m.memo)] = v
			}
		case 'h', 'j': // BINGET, LONG_BINGET
			n := 1
			if op == 'j' {
				n = 4
			}
			var k int
			if k, err = m.uint(n); err == nil {
				v, ok := m.memo[k]
				if !ok {
					return nil, fmt.Errorf("no memo %d", k)
				}
				m.push(v)
			}
		case 'Q': // BINPERSID
			var id any
			if id, err = m.pop(); err == nil {
				m.push(Persistent{ID: id})
			}
		default:
			return nil, fmt.Errorf("opcode 0x%02x at byte %d is not one of plain data", op, m.i-1)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no STOP")
}

// text reads a length-prefixed string.
func (m *machine) text(op byte) error {
	n := map[byte]int{0x8c: 1, 'X': 4, 0x8d: 8, 'U': 1, 'T': 4}[op]
	size, err := m.uint(n)
	if err != nil {
		return err
	}
	b, err := m.take(size)
	if err != nil {
		return err
	}
	m.push(string(b))
	return nil
}

// long decodes LONG1's little-endian two's complement bytes.
func long(b []byte) any {
	if len(b) == 0 {
		return 0
	}
	be := make([]byte, len(b))
	for k := range b {
		be[len(b)-1-k] = b[k]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if v.IsInt64() && v.Int64() >= math.MinInt && v.Int64() <= math.MaxInt {
		return int(v.Int64())
	}
	return v
}
