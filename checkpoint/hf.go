package checkpoint

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gochat/graph"
	"gochat/internal/atomicfile"
	"gochat/safetensors"
	"gochat/tokenizer"
)

// HuggingFace transformers' NanoChat classes (NanoChatConfig, NanoChatForCausalLM) hold the
// model of nanochat's first release under other names: the same matrices, no norm weights,
// rotary halves with nanochat's signs, ReLU², the logits softcapped at 15. A folder of
// config.json, model.safetensors, tokenizer.json and tokenizer_config.json is what
// AutoModelForCausalLM and AutoTokenizer load.
const (
	hfConfigFile    = "config.json"
	hfWeightsFile   = "model.safetensors"
	hfTokConfigFile = "tokenizer_config.json"
	hfGenConfigFile = "generation_config.json"
)

// hfNames maps a block's nanochat parameter names (after transformer.h.{i}.) to
// transformers' (after model.layers.{i}.).
var hfNames = map[string]string{
	"attn.c_q.weight": "self_attn.q_proj.weight", "attn.c_k.weight": "self_attn.k_proj.weight",
	"attn.c_v.weight": "self_attn.v_proj.weight", "attn.c_proj.weight": "self_attn.o_proj.weight",
	"mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_proj.weight": "mlp.fc2.weight",
}

// hfName is transformers' name of the nanochat parameter name.
func hfName(name string) string {
	switch name {
	case "transformer.wte.weight":
		return "model.embed_tokens.weight"
	case "lm_head.weight":
		return name
	}
	var layer int
	var rest string
	if _, err := fmt.Sscanf(name, "transformer.h.%d.%s", &layer, &rest); err == nil {
		if hf, ok := hfNames[rest]; ok {
			return fmt.Sprintf("model.layers.%d.%s", layer, hf)
		}
	}
	return ""
}

// hfConfig is config.json: NanoChatConfig's fields.
type hfConfig struct {
	Architectures         []string       `json:"architectures"`
	ModelType             string         `json:"model_type"`
	VocabSize             int            `json:"vocab_size"`
	HiddenSize            int            `json:"hidden_size"`
	IntermediateSize      int            `json:"intermediate_size"`
	NumHiddenLayers       int            `json:"num_hidden_layers"`
	NumAttentionHeads     int            `json:"num_attention_heads"`
	NumKeyValueHeads      int            `json:"num_key_value_heads"`
	MaxPositionEmbeddings int            `json:"max_position_embeddings"`
	HiddenAct             string         `json:"hidden_act"`
	RMSNormEps            pyFloat        `json:"rms_norm_eps"`
	RopeTheta             pyFloat        `json:"rope_theta"`
	RopeParameters        map[string]any `json:"rope_parameters,omitempty"`
	FinalLogitSoftcapping *pyFloat       `json:"final_logit_softcapping"` // null: none, which nanochat's model has not
	AttentionBias         bool           `json:"attention_bias"`
	TieWordEmbeddings     bool           `json:"tie_word_embeddings"`
	BOSTokenID            any            `json:"bos_token_id"` // an id; transformers allows a list for eos
	EOSTokenID            any            `json:"eos_token_id"`
	PadTokenID            any            `json:"pad_token_id"`
	Dtype                 string         `json:"dtype,omitempty"`
}

// pyFloat is a float that JSON always shows with a point or an exponent: transformers
// checks its config's fields by type, and 15 is an int to Python where 15.0 is a float.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return []byte(s), nil
}

// rmsNormEps is the epsilon of nanochat's RMSNorm in float32: F.rms_norm without one takes
// float32's machine epsilon.
var rmsNormEps = float64(math.Nextafter32(1, 2) - 1)

// chatTemplate renders a conversation as tokenizer.RenderConversation does, for
// transformers' apply_chat_template: bos, a leading system message merged into the first user
// message, each turn between its special tokens, and the assistant's start token to be
// completed when add_generation_prompt is set.
const chatTemplate = `{{ bos_token }}{% set ns = namespace(system='') %}{% for message in messages %}` +
	`{% if message['role'] == 'system' %}{% set ns.system = message['content'] + '\n\n' %}` +
	`{% elif message['role'] == 'user' %}{{ '<|user_start|>' + ns.system + message['content'] + '<|user_end|>' }}{% set ns.system = '' %}` +
	`{% elif message['role'] == 'assistant' %}{{ '<|assistant_start|>' + message['content'] + '<|assistant_end|>' }}` +
	`{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant_start|>' }}{% endif %}`

// ExportHF writes a step of the gochat run folder src, trained with tok, as a folder dst
// that transformers loads with its NanoChat classes: config.json, model.safetensors (float32,
// transformers' names), tokenizer.json, tokenizer_config.json with the chat template, and
// generation_config.json (generation ends at <|assistant_end|> or <|bos|>, as nanochat's
// does).
func ExportHF(src string, step int, tok *tokenizer.Tokenizer, dst string) error {
	c, err := Load(src, step, false)
	if err != nil {
		return err
	}
	if fp := c.Meta.Tokenizer.Fingerprint; fp != "" && fp != tok.Fingerprint() {
		return fmt.Errorf("%s step %d was trained with tokenizer %s, not %s", src, step, fp, tok.Fingerprint())
	}
	cfg := c.Meta.ModelConfig
	if cfg.VocabSize != tok.VocabSize() {
		return fmt.Errorf("the model's vocabulary has %d tokens, the tokenizer's %d", cfg.VocabSize, tok.VocabSize())
	}
	bos, _ := tok.Special("<|bos|>")
	end, _ := tok.Special("<|assistant_end|>")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	tensors := map[string]safetensors.Tensor{}
	for _, p := range cfg.Params() {
		tensors[hfName(p.Name)] = safetensors.F32(c.Weights[p.Name], p.Shape[0], p.Shape[1])
	}
	if err := safetensors.Write(filepath.Join(dst, hfWeightsFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	softcap := pyFloat(graph.LogitSoftcap)
	conf := hfConfig{Architectures: []string{"NanoChatForCausalLM"}, ModelType: "nanochat",
		VocabSize: cfg.VocabSize, HiddenSize: cfg.NEmbd, IntermediateSize: 4 * cfg.NEmbd, NumHiddenLayers: cfg.NLayer,
		NumAttentionHeads: cfg.NHead, NumKeyValueHeads: cfg.NKVHead, MaxPositionEmbeddings: cfg.SequenceLen,
		HiddenAct: "relu2", RMSNormEps: pyFloat(rmsNormEps), RopeTheta: graph.RotaryBase,
		RopeParameters:        map[string]any{"rope_type": "default", "rope_theta": pyFloat(graph.RotaryBase)},
		FinalLogitSoftcapping: &softcap, BOSTokenID: bos, EOSTokenID: end, PadTokenID: bos, Dtype: "float32"}
	files := []struct {
		name string
		doc  any
	}{
		{hfConfigFile, conf},
		{hfGenConfigFile, map[string]any{"bos_token_id": bos, "eos_token_id": []int{end, bos}, "pad_token_id": bos}},
		{hfTokConfigFile, map[string]any{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|bos|>",
			"eos_token": "<|assistant_end|>", "pad_token": "<|bos|>", "model_max_length": cfg.SequenceLen,
			"chat_template": chatTemplate, "clean_up_tokenization_spaces": false}},
	}
	for _, f := range files {
		if err := writeJSON(filepath.Join(dst, f.name), f.doc); err != nil {
			return err
		}
	}
	return tok.WriteHF(filepath.Join(dst, tokenizer.HFFile))
}

// writeJSON writes doc, indented, atomically.
func writeJSON(path string, doc any) error {
	return atomicfile.Write(path, func(f *os.File) error {
		enc := json.NewEncoder(f)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	})
}

// ImportHF reads a folder in transformers' NanoChat layout (what ExportHF writes, or
// transformers' own conversion of a nanochat checkpoint: float32, bfloat16 or float16
// weights) into step 0 of the gochat run folder dst, and returns its tokenizer, which the
// caller saves where the run's commands will find it. A config that is not nanochat's model
// (another activation, softcap, rotary base, tied or biased weights) is refused.
func ImportHF(src, dst string) (*tokenizer.Tokenizer, error) {
	raw, err := os.ReadFile(filepath.Join(src, hfConfigFile))
	if err != nil {
		return nil, err
	}
	var conf hfConfig
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, fmt.Errorf("%s: %w", hfConfigFile, err)
	}
	theta := float64(conf.RopeTheta)
	if t, ok := conf.RopeParameters["rope_theta"].(float64); ok {
		theta = t
	}
	kv := conf.NumKeyValueHeads
	if kv == 0 {
		kv = conf.NumAttentionHeads
	}
	for _, c := range []struct {
		ok   bool
		what string
	}{
		{conf.ModelType == "nanochat", fmt.Sprintf("model_type %q, want nanochat", conf.ModelType)},
		{conf.HiddenAct == "" || conf.HiddenAct == "relu2", fmt.Sprintf("hidden_act %q, want relu2", conf.HiddenAct)},
		{conf.IntermediateSize == 4*conf.HiddenSize, fmt.Sprintf("intermediate_size %d, want 4 × hidden_size = %d", conf.IntermediateSize, 4*conf.HiddenSize)},
		{theta == 0 || theta == graph.RotaryBase, fmt.Sprintf("rope_theta %g, want %d", theta, graph.RotaryBase)},
		{conf.FinalLogitSoftcapping != nil && *conf.FinalLogitSoftcapping == graph.LogitSoftcap, fmt.Sprintf("final_logit_softcapping %s, want %g", softcapOf(conf), float64(graph.LogitSoftcap))},
		{!conf.TieWordEmbeddings && !conf.AttentionBias, "tied embeddings or attention biases, which nanochat's model has not"},
	} {
		if !c.ok {
			return nil, fmt.Errorf("%s: %s", filepath.Join(src, hfConfigFile), c.what)
		}
	}
	cfg := graph.Config{SequenceLen: conf.MaxPositionEmbeddings, VocabSize: conf.VocabSize, NLayer: conf.NumHiddenLayers,
		NHead: conf.NumAttentionHeads, NKVHead: kv, NEmbd: conf.HiddenSize}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", hfConfigFile, err)
	}
	path := filepath.Join(src, hfWeightsFile)
	if _, err := os.Stat(path); err != nil {
		if _, serr := os.Stat(filepath.Join(src, hfWeightsFile+".index.json")); serr == nil {
			return nil, fmt.Errorf("%s: weights in several shards are not read; save the model with a larger max_shard_size", src)
		}
		return nil, err
	}
	tensors, _, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	w := graph.Weights{}
	expected := map[string]bool{}
	for _, p := range cfg.Params() {
		name := hfName(p.Name)
		expected[name] = true
		t, ok := tensors[name]
		if !ok {
			return nil, fmt.Errorf("%s: no %s", path, name)
		}
		if len(t.Shape) != 2 || t.Shape[0] != p.Shape[0] || t.Shape[1] != p.Shape[1] {
			return nil, fmt.Errorf("%s: %s has shape %v, want %v", path, name, t.Shape, p.Shape)
		}
		if w[p.Name], err = t.Float32s(); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
	}
	for name := range tensors {
		if !expected[name] {
			return nil, fmt.Errorf("%s: %s is not a parameter of nanochat's model", path, name)
		}
	}
	tok, err := tokenizer.ReadHF(filepath.Join(src, tokenizer.HFFile))
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() != cfg.VocabSize {
		return nil, fmt.Errorf("%s: the tokenizer has %d tokens, the model %d", src, tok.VocabSize(), cfg.VocabSize)
	}
	meta := Meta{ModelConfig: cfg, MaxSeqLen: cfg.SequenceLen, Tokenizer: Tokenizer{Dir: src, Fingerprint: tok.Fingerprint()},
		UserConfig: map[string]any{"source": src}}
	return tok, Save(dst, w, nil, meta)
}

// softcapOf is the config's softcap as a message shows it.
func softcapOf(c hfConfig) string {
	if c.FinalLogitSoftcapping == nil {
		return "null (none)"
	}
	return strconv.FormatFloat(float64(*c.FinalLogitSoftcapping), 'g', -1, 64)
}
