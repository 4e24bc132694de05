package pickle

import (
	"math/big"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	v := Tuple{nil, true, false, 0, 255, 256, 65535, 65536, -1, -1 << 40, 1.5, "héllo", Bytes("\x00\xff"),
		&List{Items: []any{1, "two"}}, &List{}, Dict{"a": 1, Bytes("b"): Tuple{2, 3}, 7: nil},
		Global{"torch", "FloatStorage"}, Persistent{ID: Tuple{"storage", Global{"torch", "FloatStorage"}, "0", "cpu", 6}},
		&Call{Func: Global{"torch._utils", "_rebuild_tensor_v2"}, Args: Tuple{1, Tuple{2, 3}}, State: Dict{"x": 1}}}
	raw, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unpickle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("got %#v\nwant %#v", got, v)
	}
	od, _ := Marshal(OrderedDict{{"w", 1}, {"b", 2}})
	if got, err := Unpickle(od); err != nil || !reflect.DeepEqual(got, Dict{"w": 1, "b": 2}) {
		t.Errorf("OrderedDict: %#v, %v", got, err)
	}
	// Every prefix of a pickle is an error, never a panic.
	for n := range raw {
		if _, err := Unpickle(raw[:n]); err == nil {
			t.Fatalf("a pickle cut at byte %d of %d read", n, len(raw))
		}
	}
}

// TestPythonOpcodes reads pickles as CPython writes them (memo, frames, the long forms).
func TestPythonOpcodes(t *testing.T) {
	for _, c := range []struct {
		name string
		raw  string
		want any
	}{
		// pickle.dumps({'a': [1, 2]}, protocol=4)
		{"protocol 4", "\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94]\x94(K\x01K\x02es.", Dict{"a": &List{Items: []any{1, 2}}}},
		// pickle.dumps((2**70, -2**70), protocol=2)
		{"long", "\x80\x02\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00\xc0\x86q\x00.",
			Tuple{new(big.Int).Lsh(big.NewInt(1), 70), new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 70))}},
		// pickle.dumps(('x', 'x'), protocol=2) with the memo: BINPUT then BINGET
		{"memo", "\x80\x02X\x01\x00\x00\x00xq\x00h\x00\x86q\x01.", Tuple{"x", "x"}},
	} {
		got, err := Unpickle([]byte(c.raw))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %#v, %v", c.name, got, err)
		}
	}
	for name, raw := range map[string]string{
		"exec":      "\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsi.", // INST is not plain data
		"bad get":   "\x80\x02h\x05.",
		"bad key":   "\x80\x02}(]K\x01u.",
		"setitems":  "\x80\x02]Kdu.",
		"no stop":   "\x80\x02K\x01",
		"append":    "\x80\x02}K\x01a.",
		"underflow": "\x80\x02t.",
	} {
		if _, err := Unpickle([]byte(raw)); err == nil {
			t.Errorf("%s: read", name)
		}
	}
}

// FuzzUnpickle: any bytes give a value or an error, never a panic.
func FuzzUnpickle(f *testing.F) {
	raw, _ := Marshal(Tuple{1, "a", Dict{"k": &List{Items: []any{2.5}}}, Persistent{ID: Tuple{"storage"}}})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		Unpickle(data)
	})
}
