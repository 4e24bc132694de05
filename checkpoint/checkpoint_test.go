package checkpoint

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gochat/graph"
	"gochat/loader"
	"gochat/safetensors"
)

var tiny = graph.Config{SequenceLen: 16, VocabSize: 64, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 32}

func save(t testing.TB, dir string, step int) (graph.Weights, Meta) {
	t.Helper()
	w := graph.InitWeights(tiny, uint64(step))
	bpb := 1.25
	meta := Meta{Step: step, ValBPB: &bpb, ModelConfig: tiny, UserConfig: map[string]any{"depth": 2},
		DeviceBatchSize: 2, MaxSeqLen: 16, NumIterations: 100, Loader: loader.Position{Shard: 1, RowGroup: 2, Doc: 3, Token: 4},
		Seed: 7, Tokenizer: Tokenizer{Dir: "tok", Fingerprint: "0123456789abcdef"}, Loop: json.RawMessage(`{"smooth_train_loss":0.30000000000000004,"total_training_time":12.5}`)}
	optim := map[string]safetensors.Tensor{"iter": safetensors.I64([]int{step}, 1)}
	if err := Save(dir, w, optim, meta); err != nil {
		t.Fatal(err)
	}
	return w, meta
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base_checkpoints", "d2")
	save(t, dir, 5)
	os.WriteFile(Int8File(dir, 5), []byte("int8 weights of the first save"), 0o644)
	save(t, dir, 5) // saved again: its int8 weights are stale and go
	if _, err := os.Stat(Int8File(dir, 5)); !os.IsNotExist(err) {
		t.Errorf("a step saved again keeps its old int8 weights: %v", err)
	}
	w, meta := save(t, dir, 20)
	if steps, err := Steps(dir); err != nil || !slices.Equal(steps, []int{5, 20}) {
		t.Fatalf("steps %v (%v)", steps, err)
	}
	last, err := LastStep(dir)
	if err != nil || last != 20 {
		t.Fatalf("last step %d (%v)", last, err)
	}
	c, err := Load(dir, 20, true)
	if err != nil {
		t.Fatal(err)
	}
	if compact(c.Meta.Loop) != compact(meta.Loop) || c.Meta.Loader != meta.Loader || *c.Meta.ValBPB != 1.25 ||
		c.Meta.ModelConfig != tiny || c.Meta.Tokenizer != meta.Tokenizer || c.Meta.Seed != 7 {
		t.Errorf("meta %+v, want %+v", c.Meta, meta)
	}
	for name, v := range w {
		if !slices.Equal(c.Weights[name], v) {
			t.Errorf("%s differs", name)
		}
	}
	if it, _ := c.Optim["iter"].Ints(); !slices.Equal(it, []int{20}) {
		t.Errorf("optimizer state %v", it)
	}
	// nanochat's field names, for tools that read its meta files.
	raw, _ := os.ReadFile(filepath.Join(dir, "meta_000020.json"))
	for _, key := range []string{`"step": 20`, `"val_bpb": 1.25`, `"model_config"`, `"n_layer": 2`, `"user_config"`, `"device_batch_size": 2`, `"max_seq_len": 16`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("meta lacks %s:\n%s", key, raw)
		}
	}
}

func TestLoadRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	save(t, dir, 3)
	model := filepath.Join(dir, "model_000003.safetensors")
	raw, _ := os.ReadFile(model)
	os.WriteFile(model, raw[:len(raw)/2], 0o644)
	if _, err := Load(dir, 3, false); err == nil || !strings.Contains(err.Error(), "model_000003") {
		t.Errorf("truncated weights: %v", err)
	}

	save(t, dir, 4)
	meta := filepath.Join(dir, "meta_000004.json")
	raw, _ = os.ReadFile(meta)
	os.WriteFile(meta, []byte(strings.Replace(string(raw), `"n_layer": 2`, `"n_layer": 3`, 1)), 0o644)
	if _, err := Load(dir, 4, false); err == nil || !strings.Contains(err.Error(), "transformer.h.2") {
		t.Errorf("weights of another config: %v", err)
	}
	os.WriteFile(meta, raw[:10], 0o644)
	if _, err := Load(dir, 4, false); err == nil || !strings.Contains(err.Error(), "meta_000004.json") {
		t.Errorf("truncated meta: %v", err)
	}

	save(t, dir, 6)
	os.Remove(filepath.Join(dir, "optim_000006.safetensors"))
	if _, err := Load(dir, 6, true); err == nil {
		t.Error("a step without optimizer state resumed")
	}
	if _, err := Load(dir, 6, false); err != nil {
		t.Errorf("weights alone: %v", err)
	}
	if _, err := LastStep(t.TempDir()); err == nil {
		t.Error("an empty folder has a last step")
	}
}

func TestLargestTag(t *testing.T) {
	root := t.TempDir()
	if _, err := LargestTag(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing folder has a tag")
	}
	for _, d := range []string{"d4", "d12", "d6", "custom"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	if tag, err := LargestTag(root); err != nil || tag != "d12" {
		t.Errorf("tag %q (%v), want d12", tag, err)
	}
}

// compact is a JSON text without its insignificant spaces.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "invalid: " + err.Error()
	}
	return b.String()
}

// TestLoadRefusesWhatItCannotTrust: weights that are NaN, a meta file that names another
// step, an update of a step never saved, and tags that are not plain names.
func TestLoadRefusesWhatItCannotTrust(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d2")
	w, meta := save(t, dir, 3)
	w["transformer.h.1.mlp.c_fc.weight"][7] = float32(math.NaN())
	if err := tiny.WriteWeights(modelFile(dir, 3), w); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, 3, false); err == nil || !strings.Contains(err.Error(), "transformer.h.1.mlp.c_fc.weight holds 1 NaN") {
		t.Errorf("NaN weights: %v", err)
	}
	meta.Step = 4
	raw, _ := json.Marshal(meta)
	os.WriteFile(metaFile(dir, 3), raw, 0o644)
	if _, err := ReadMeta(dir, 3); err == nil || !strings.Contains(err.Error(), "says it is step 4") {
		t.Errorf("a meta file of another step: %v", err)
	}
	if err := UpdateMeta(dir, meta); err == nil {
		t.Error("updated the meta of a step never saved")
	}
	for _, tag := range []string{"", ".", "..", "../elsewhere", "a/b", `a\b`} {
		if err := ValidTag(tag); err == nil {
			t.Errorf("tag %q accepted", tag)
		}
	}
	for _, tag := range []string{"d12", "demo", "sft-v2.1"} {
		if err := ValidTag(tag); err != nil {
			t.Errorf("tag %q refused: %v", tag, err)
		}
	}
}

// TestLock: a second writer of a run folder is refused while the first holds it, and may
// write once it is released; taking the lock clears the temporary files of interrupted
// saves.
func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d2")
	os.MkdirAll(dir, 0o755)
	stale := filepath.Join(dir, ".model_000004.safetensors.tmp123")
	os.WriteFile(stale, []byte("half a save"), 0o644)
	release, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("an interrupted save's temporary file is still there")
	}
	if _, err := Lock(dir); err == nil || !strings.Contains(err.Error(), "another gochat") {
		t.Errorf("a second writer: %v", err)
	}
	release()
	again, err := Lock(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}

// FuzzReadMeta: any meta file gives a meta whose config is valid and whose step is its
// file's, or an error, never a panic.
func FuzzReadMeta(f *testing.F) {
	dir := f.TempDir()
	_, meta := save(f, dir, 1)
	raw, _ := json.Marshal(meta)
	f.Add(raw)
	f.Add([]byte(`{"step": 1, "model_config": {"sequence_len": 99999999999}}`))
	f.Add([]byte(`{"step": 1, "loop": [1, 2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		os.WriteFile(metaFile(dir, 1), data, 0o644)
		m, err := ReadMeta(dir, 1)
		if err != nil {
			return
		}
		if m.Step != 1 || m.ModelConfig.Validate() != nil {
			t.Fatalf("accepted %+v", m)
		}
	})
}
