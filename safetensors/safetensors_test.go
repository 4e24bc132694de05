package safetensors

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	in := map[string]Tensor{
		"a.weight": F32([]float32{1, -2.5, 3e-8, float32(math.Inf(1)), 0, 7}, 2, 3),
		"ids":      I64([]int{-1, 0, 1 << 40}, 3),
		"scalar":   F32([]float32{4}),
	}
	meta := map[string]string{"format": "pt"}
	if err := Write(path, in, meta); err != nil {
		t.Fatal(err)
	}
	out, gotMeta, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotMeta, meta) {
		t.Errorf("metadata %v, want %v", gotMeta, meta)
	}
	for name, want := range in {
		got := out[name]
		if got.DType != want.DType || !reflect.DeepEqual(got.Data, want.Data) || got.Len() != want.Len() {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	ids, _ := out["ids"].Ints()
	if !reflect.DeepEqual(ids, []int{-1, 0, 1 << 40}) {
		t.Errorf("ids %v", ids)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a write, want only the file", len(entries))
	}
}

// TestSafetensorsReadsPython reads the golden files, written by Python's safetensors.
func TestSafetensorsReadsPython(t *testing.T) {
	w, _, err := Read("../testdata/golden/tiny_mha/weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	wte := w["transformer.wte.weight"]
	if wte.DType != "F64" || !reflect.DeepEqual(wte.Shape, []int{256, 64}) {
		t.Fatalf("wte: %s %v", wte.DType, wte.Shape)
	}
	in, _, err := Read("../testdata/golden/tiny_mha/inputs.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	targets, err := in["targets"].Ints()
	if err != nil || len(targets) != 64 {
		t.Fatalf("targets: %v %v", len(targets), err)
	}
	ignored := 0
	for _, x := range targets {
		if x == -1 {
			ignored++
		}
	}
	if ignored != 64-54 { // meta.json: 54 valid targets
		t.Errorf("%d ignored targets, want 10", ignored)
	}
}

func TestSafetensorsRejectsDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := Write(good, map[string]Tensor{"x": F32(make([]float32, 100), 10, 10)}, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	hugeHeader := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint64(hugeHeader, 1<<40)
	badJSON := append([]byte(nil), raw...)
	badJSON[9] = '!'
	// A shape whose element count overflows an int, so that count·4 wraps to the 400 bytes
	// the offsets hold: 2^62+25 elements of 4 bytes are 2^64 + 100·4.
	overflow := []byte(strings.Replace(string(raw), "[10,10]", "[4611686018427387929,4]", 1))
	overflow = append([]byte(nil), overflow...)
	binary.LittleEndian.PutUint64(overflow, binary.LittleEndian.Uint64(raw)+uint64(len("[4611686018427387929,4]")-len("[10,10]")))
	for name, data := range map[string][]byte{
		"overflowing shape": overflow,
		"truncated data":    raw[:len(raw)-4],
		"truncated header":  raw[:20],
		"tiny":              raw[:3],
		"huge header":       hugeHeader,
		"bad json":          badJSON,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, _, err := Read(p); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

func TestHalfPrecisionConversions(t *testing.T) {
	// bf16 0x3fc0 = 1.5; f16 0x3c00 = 1, 0xc000 = -2, 0x0001 = 2^-24, 0x7c00 = +Inf.
	bf := Tensor{DType: "BF16", Shape: []int{1}, Data: []byte{0xc0, 0x3f}}
	f16 := Tensor{DType: "F16", Shape: []int{4}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c}}
	b, _ := bf.Float32s()
	h, _ := f16.Float32s()
	if b[0] != 1.5 || h[0] != 1 || h[1] != -2 || h[2] != float32(math.Pow(2, -24)) || !math.IsInf(float64(h[3]), 1) {
		t.Fatalf("bf16 %v, f16 %v", b, h)
	}
}

// FuzzParse: any bytes give tensors whose data fit their dtype and shape, or an error,
// never a panic.
func FuzzParse(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.safetensors")
	if err := Write(path, map[string]Tensor{"x": F32(make([]float32, 6), 2, 3), "n": I64([]int{7}, 1)}, map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	f.Add(raw)
	f.Add(raw[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, _, err := parse(data)
		if err != nil {
			return
		}
		for name, x := range tensors {
			if len(x.Data) != x.Len()*dtypeSize[x.DType] {
				t.Fatalf("%s: %d bytes for %v %s", name, len(x.Data), x.Shape, x.DType)
			}
		}
	})
}
