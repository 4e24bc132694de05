package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gochat/graph"
	"gochat/safetensors"
	"gochat/tokenizer"
)

// goldenRun is the d2 model gochat trained on Go's sources for the CORE golden case, and
// its tokenizer.
const goldenRun, goldenStep = "../testdata/golden/core/model", 400

func goldenTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join(goldenRun, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// exportGolden writes the golden run in transformers' layout into a new folder.
func exportGolden(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "hf")
	if err := ExportHF(goldenRun, goldenStep, goldenTokenizer(t), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestHFRoundTrip exports the golden run and imports it back: transformers' names and
// config, the same weights bit for bit, the same model and tokenizer.
func TestHFRoundTrip(t *testing.T) {
	dst := exportGolden(t)
	src, err := Load(goldenRun, goldenStep, false)
	if err != nil {
		t.Fatal(err)
	}
	tensors, _, err := safetensors.Read(filepath.Join(dst, hfWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{"lm_head.weight", "model.embed_tokens.weight"}
	for l := range 2 {
		for _, n := range []string{"mlp.fc1", "mlp.fc2", "self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj", "self_attn.v_proj"} {
			want = append(want, "model.layers."+string(rune('0'+l))+"."+n+".weight")
		}
	}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("tensors %v, want %v", names, want)
	}
	var conf map[string]any
	raw, _ := os.ReadFile(filepath.Join(dst, hfConfigFile))
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	cfg := src.Meta.ModelConfig
	for key, v := range map[string]any{"model_type": "nanochat", "hidden_size": cfg.NEmbd, "intermediate_size": 4 * cfg.NEmbd,
		"num_hidden_layers": cfg.NLayer, "num_attention_heads": cfg.NHead, "num_key_value_heads": cfg.NKVHead,
		"vocab_size": cfg.VocabSize, "max_position_embeddings": cfg.SequenceLen, "hidden_act": "relu2",
		"final_logit_softcapping": 15.0, "rope_theta": 10000.0, "rms_norm_eps": 1.1920928955078125e-07, "tie_word_embeddings": false} {
		got, _ := json.Marshal(conf[key])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("config.json %s = %s, want %s", key, got, exp)
		}
	}
	for _, f := range []string{hfTokConfigFile, hfGenConfigFile, tokenizer.HFFile} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Error(err)
		}
	}

	run := filepath.Join(t.TempDir(), "imported")
	tok, err := ImportHF(dst, run)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(run, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if back.Meta.ModelConfig != cfg || tok.Fingerprint() != goldenTokenizer(t).Fingerprint() || back.Meta.Tokenizer.Fingerprint != tok.Fingerprint() {
		t.Errorf("imported %+v with tokenizer %s", back.Meta.ModelConfig, tok.Fingerprint())
	}
	sameWeights(t, "imported", back.Weights, src.Weights)
}

// TestHFImportRefuses damages an exported folder in each way a folder of another model
// differs, and imports bfloat16 weights as transformers' own conversion writes them.
func TestHFImportRefuses(t *testing.T) {
	for _, c := range []struct {
		change func(conf map[string]any)
		want   string
	}{
		{func(c map[string]any) { c["model_type"] = "llama" }, `model_type "llama"`},
		{func(c map[string]any) { c["hidden_act"] = "gelu" }, `hidden_act "gelu"`},
		{func(c map[string]any) { c["rope_parameters"] = map[string]any{"rope_theta": 100000.0} }, "rope_theta 100000"},
		{func(c map[string]any) { c["tie_word_embeddings"] = true }, "tied embeddings"},
		{func(c map[string]any) { c["intermediate_size"] = 100 }, "intermediate_size 100"},
		{func(c map[string]any) { c["num_attention_heads"] = 3 }, "not a multiple"},
		{func(c map[string]any) { c["final_logit_softcapping"] = nil }, "final_logit_softcapping null"},
		{func(c map[string]any) { c["final_logit_softcapping"] = 30.0 }, "final_logit_softcapping 30"},
	} {
		dst := exportGolden(t)
		var conf map[string]any
		raw, _ := os.ReadFile(filepath.Join(dst, hfConfigFile))
		json.Unmarshal(raw, &conf)
		c.change(conf)
		raw, _ = json.Marshal(conf)
		os.WriteFile(filepath.Join(dst, hfConfigFile), raw, 0o644)
		if _, err := ImportHF(dst, filepath.Join(t.TempDir(), "run")); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.want, err)
		}
	}

	// transformers allows a list of end tokens: the import does not read them.
	listed := exportGolden(t)
	var conf map[string]any
	raw, _ := os.ReadFile(filepath.Join(listed, hfConfigFile))
	json.Unmarshal(raw, &conf)
	conf["eos_token_id"] = []int{2043, 2039}
	raw, _ = json.Marshal(conf)
	os.WriteFile(filepath.Join(listed, hfConfigFile), raw, 0o644)
	if _, err := ImportHF(listed, filepath.Join(t.TempDir(), "run")); err != nil {
		t.Errorf("a list of end tokens: %v", err)
	}

	dst := exportGolden(t)
	path := filepath.Join(dst, hfWeightsFile)
	tensors, _, _ := safetensors.Read(path)
	half := map[string]safetensors.Tensor{}
	rounded := graph.Weights{}
	for name, ts := range tensors {
		f, _ := ts.Float32s()
		b := make([]byte, 2*len(f))
		r := make([]float32, len(f))
		for i, x := range f {
			h := uint16(math.Float32bits(x) >> 16) // truncation is a bfloat16 value too
			binary.LittleEndian.PutUint16(b[2*i:], h)
			r[i] = math.Float32frombits(uint32(h) << 16)
		}
		half[name], rounded[name] = safetensors.Tensor{DType: "BF16", Shape: ts.Shape, Data: b}, r
	}
	if err := safetensors.Write(path, half, nil); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	if _, err := ImportHF(dst, run); err != nil {
		t.Fatalf("bfloat16 weights: %v", err)
	}
	back, _ := Load(run, 0, false)
	for _, p := range back.Meta.ModelConfig.Params() {
		if !slices.Equal(back.Weights[p.Name], rounded[hfName(p.Name)]) {
			t.Fatalf("bfloat16 %s differs after the import", p.Name)
		}
	}

	for name, damage := range map[string]func(map[string]safetensors.Tensor){
		"is not a parameter": func(m map[string]safetensors.Tensor) {
			m["model.norm.weight"] = safetensors.F32(make([]float32, 128), 128)
		},
		"no lm_head.weight": func(m map[string]safetensors.Tensor) { delete(m, "lm_head.weight") },
		"has shape [2048 64]": func(m map[string]safetensors.Tensor) {
			m["lm_head.weight"] = safetensors.F32(make([]float32, 2048*64), 2048, 64)
		},
	} {
		m := map[string]safetensors.Tensor{}
		for k, v := range half {
			m[k] = v
		}
		damage(m)
		safetensors.Write(path, m, nil)
		if _, err := ImportHF(dst, filepath.Join(t.TempDir(), "run")); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	os.Remove(path)
	os.WriteFile(path+".index.json", []byte("{}"), 0o644)
	if _, err := ImportHF(dst, filepath.Join(t.TempDir(), "run")); err == nil || !strings.Contains(err.Error(), "several shards") {
		t.Errorf("sharded weights: %v", err)
	}
}
