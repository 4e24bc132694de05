package pickle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// OrderedDict is written as a collections.OrderedDict with its items in this order.
type OrderedDict []Item

// Item is a key and its value.
type Item struct{ Key, Value any }

// Marshal writes v as a protocol-2 pickle, the protocol torch.save uses. It takes the
// value types Unpickle returns (a Dict with its keys in no set order) and OrderedDict.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	b.Write([]byte{0x80, 2})
	if err := write(&b, v); err != nil {
		return nil, err
	}
	b.WriteByte('.')
	return b.Bytes(), nil
}

func write(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteByte('N')
	case bool:
		if x {
			b.WriteByte(0x88)
		} else {
			b.WriteByte(0x89)
		}
	case int:
		writeInt(b, x)
	case float64:
		b.WriteByte('G')
		binary.Write(b, binary.BigEndian, math.Float64bits(x))
	case string:
		b.WriteByte('X')
		binary.Write(b, binary.LittleEndian, uint32(len(x)))
		b.WriteString(x)
	case Bytes:
		b.WriteByte('B')
		binary.Write(b, binary.LittleEndian, uint32(len(x)))
		b.WriteString(string(x))
	case Tuple:
		b.WriteByte('(')
		for _, item := range x {
			if err := write(b, item); err != nil {
				return err
			}
		}
		b.WriteByte('t')
	case *List:
		b.WriteByte(']')
		if len(x.Items) > 0 {
			b.WriteByte('(')
			for _, item := range x.Items {
				if err := write(b, item); err != nil {
					return err
				}
			}
			b.WriteByte('e')
		}
	case Dict:
		items := make(OrderedDict, 0, len(x))
		for k, v := range x {
			items = append(items, Item{k, v})
		}
		b.WriteByte('}')
		return writeItems(b, items)
	case OrderedDict:
		if err := write(b, &Call{Func: Global{"collections", "OrderedDict"}, Args: Tuple{}}); err != nil {
			return err
		}
		return writeItems(b, x)
	case Global:
		fmt.Fprintf(b, "c%s\n%s\n", x.Module, x.Name)
	case *Call:
		if err := write(b, x.Func); err != nil {
			return err
		}
		if err := write(b, x.Args); err != nil {
			return err
		}
		b.WriteByte('R')
		if x.State != nil {
			if err := write(b, x.State); err != nil {
				return err
			}
			b.WriteByte('b')
		}
	case Persistent:
		if err := write(b, x.ID); err != nil {
			return err
		}
		b.WriteByte('Q')
	default:
		return fmt.Errorf("pickle: cannot write a %T", v)
	}
	return nil
}

func writeItems(b *bytes.Buffer, items OrderedDict) error {
	if len(items) == 0 {
		return nil
	}
	b.WriteByte('(')
	for _, it := range items {
		if err := write(b, it.Key); err != nil {
			return err
		}
		if err := write(b, it.Value); err != nil {
			return err
		}
	}
	b.WriteByte('u')
	return nil
}

// writeInt uses the shortest of BININT1, BININT2, BININT and LONG1.
func writeInt(b *bytes.Buffer, x int) {
	switch {
	case x >= 0 && x < 1<<8:
		b.Write([]byte{'K', byte(x)})
	case x >= 0 && x < 1<<16:
		b.WriteByte('M')
		binary.Write(b, binary.LittleEndian, uint16(x))
	case x >= math.MinInt32 && x <= math.MaxInt32:
		b.WriteByte('J')
		binary.Write(b, binary.LittleEndian, int32(x))
	default:
		b.Write([]byte{0x8a, 8})
		binary.Write(b, binary.LittleEndian, int64(x))
	}
}
