package checkpoint

import (
	"archive/zip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gochat/graph"
	"gochat/internal/pickle"
)

// ptConfig is the model of testdata/pt, written by PyTorch 2.11 (make_fixture.py): wte in
// bfloat16 as nanochat keeps it on CUDA, the rest float32.
var ptConfig = graph.Config{SequenceLen: 16, VocabSize: 64, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 32}

func expectedPT(t *testing.T) graph.Weights {
	raw, err := os.ReadFile("../testdata/pt/expected_000005.bin")
	if err != nil {
		t.Fatal(err)
	}
	w := graph.Weights{}
	for _, p := range ptConfig.Params() {
		n := p.Shape[0] * p.Shape[1]
		w[p.Name] = make([]float32, n)
		for i := range n {
			w[p.Name][i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		raw = raw[4*n:]
	}
	return w
}

func sameWeights(t *testing.T, what string, got, want graph.Weights) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Fatalf("%s: %s differs", what, name)
		}
	}
}

// TestReadPT reads PyTorch's own files: a nanochat state_dict (bfloat16 wte), and one with
// torch.compile's "_orig_mod." prefix and a transposed storage.
func TestReadPT(t *testing.T) {
	want := expectedPT(t)
	for _, f := range []string{"model_000005.pt", "model_000006.pt"} {
		got, err := ReadPT(filepath.Join("../testdata/pt/d2", f), ptConfig)
		if err != nil {
			t.Fatal(err)
		}
		sameWeights(t, f, got, want)
	}
}

// TestImportExport: nanochat's folder → a gochat run → nanochat's files again, with the
// same weights (the export was also loaded by PyTorch 2.11 with weights_only=True and
// load_state_dict(strict=True): make_fixture.py check).
func TestImportExport(t *testing.T) {
	run := filepath.Join(t.TempDir(), "d2")
	if err := Import("../testdata/pt/d2", 5, run); err != nil {
		t.Fatal(err)
	}
	c, err := Load(run, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.ModelConfig != ptConfig || *c.Meta.ValBPB != 1.5 || c.Meta.DeviceBatchSize != 2 {
		t.Errorf("meta %+v", c.Meta)
	}
	sameWeights(t, "imported", c.Weights, expectedPT(t))
	out := t.TempDir()
	if err := Export(run, 5, out); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPT(filepath.Join(out, "model_000005.pt"), ptConfig)
	if err != nil {
		t.Fatal(err)
	}
	sameWeights(t, "exported", back, expectedPT(t))
	if m, err := ReadMeta(out, 5); err != nil || m.ModelConfig != ptConfig {
		t.Errorf("exported meta: %+v, %v", m, err)
	}
}

func TestReadPTRejectsDamage(t *testing.T) {
	raw, _ := os.ReadFile("../testdata/pt/d2/model_000005.pt")
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"truncated": raw[:len(raw)-200],
		"not a zip": []byte("PK? no"),
		"empty":     nil,
		"corrupt":   append(append([]byte{}, raw[:3000]...), append(make([]byte, 500), raw[3500:]...)...),
	} {
		p := filepath.Join(dir, name+".pt")
		os.WriteFile(p, data, 0o644)
		if _, err := ReadPT(p, ptConfig); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A model whose shapes differ from its meta file's config.
	src := t.TempDir()
	meta, _ := os.ReadFile("../testdata/pt/d2/meta_000005.json")
	os.WriteFile(filepath.Join(src, "meta_000005.json"), []byte(strings.Replace(string(meta), `"n_embd": 32`, `"n_embd": 64`, 1)), 0o644)
	os.WriteFile(filepath.Join(src, "model_000005.pt"), raw, 0o644)
	if err := Import(src, 5, t.TempDir()); err == nil {
		t.Error("imported weights of another shape")
	}
}

// craftPT writes a .pt whose data.pkl holds lm_head.weight with the given geometry over a
// storage of numel floats, stored (uncompressed) with data bytes or, deflated, with a
// stream that inflates to inflated zero bytes.
func craftPT(t *testing.T, size, stride pickle.Tuple, numel int, data []byte, inflated int) string {
	t.Helper()
	storage := pickle.Persistent{ID: pickle.Tuple{"storage", pickle.Global{Module: "torch", Name: "FloatStorage"}, "0", "cpu", numel}}
	tensor := &pickle.Call{Func: pickle.Global{Module: "torch._utils", Name: "_rebuild_tensor_v2"},
		Args: pickle.Tuple{storage, 0, size, stride, false, pickle.OrderedDict{}}}
	pkl, err := pickle.Marshal(pickle.OrderedDict{{Key: "lm_head.weight", Value: tensor}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.pt")
	f, _ := os.Create(path)
	defer f.Close()
	z := zip.NewWriter(f)
	w, _ := z.Create("model/data.pkl")
	w.Write(pkl)
	w, _ = z.Create("model/data/0")
	if inflated > 0 {
		w.Write(make([]byte, inflated))
	} else {
		w.Write(data)
	}
	z.Close()
	return path
}

// TestReadPTRefusesBalloons: a file that declares more than the model it claims to be is
// refused before memory is given to what it declares: a broadcast tensor of 300M elements
// over one float (632 bytes of file), a storage that inflates far past its declared size.
func TestReadPTRefusesBalloons(t *testing.T) {
	broadcast := craftPT(t, pickle.Tuple{300_000_000, 1}, pickle.Tuple{0, 0}, 1, make([]byte, 4), 0)
	if _, err := ReadPT(broadcast, ptConfig); err == nil || !strings.Contains(err.Error(), "shape [300000000 1]") {
		t.Errorf("a broadcast tensor: %v", err)
	}
	rows, cols := ptConfig.VocabSize, ptConfig.NEmbd
	bomb := craftPT(t, pickle.Tuple{rows, cols}, pickle.Tuple{cols, 1}, rows*cols, nil, 64<<20)
	if _, err := ReadPT(bomb, ptConfig); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("a storage that inflates past its size: %v", err)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ReadPT(broadcast, ptConfig)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Errorf("refusing a 300M-element tensor allocated %d MiB", grown>>20)
	}
}
