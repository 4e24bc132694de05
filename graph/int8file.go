package graph

import (
	"fmt"

	"gochat/backend"
	"gochat/internal/sgemm"
	"gochat/safetensors"
)

// The int8 weights of a quantized Cached, in a safetensors file of gochat's own: each matrix
// the model multiplies by as NAME.q (int8, [out, in]) and NAME.scale (float32, [out]), q, k
// and v fused as the model holds them, and the float32 embedding. Reading it skips the
// float32 matrices: a quarter of the bytes on disk and in memory.
const int8Format = "gochat-int8"

// int8Names are the names of the model's matrices in the file, with the weight each is.
func (m *Cached) int8Names() map[string]*weight {
	names := map[string]*weight{"lm_head.weight": &m.lmHead}
	for i := range m.blocks {
		b, p := &m.blocks[i], fmt.Sprintf("transformer.h.%d.", i)
		names[p+"attn.c_qkv.weight"], names[p+"attn.c_proj.weight"] = &b.qkv, &b.proj
		names[p+"mlp.c_fc.weight"], names[p+"mlp.c_proj.weight"] = &b.fc, &b.mproj
	}
	return names
}

// WriteInt8 writes the model's int8 weights to path; the model must be quantized.
func (m *Cached) WriteInt8(path string) error {
	tensors := map[string]safetensors.Tensor{"transformer.wte.weight": safetensors.F32(m.wte, m.Config.VocabSize, m.Config.NEmbd)}
	for name, w := range m.int8Names() {
		if w.q == nil {
			return fmt.Errorf("graph: the model is not quantized (Quantize it first)")
		}
		tensors[name+".q"] = safetensors.I8(w.q.Q, w.out, w.in)
		tensors[name+".scale"] = safetensors.F32(w.q.Scale, w.out)
	}
	return safetensors.Write(path, tensors, map[string]string{"format": int8Format})
}

// ReadCachedInt8 reads what WriteInt8 wrote for a model of config cfg, whose products run
// on e (its int8 ones by the int8 kernels of the engine it is placed on, or the host's).
func ReadCachedInt8(path string, cfg Config, e backend.Gemm) (*Cached, error) {
	tensors, meta, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	if meta["format"] != int8Format {
		return nil, fmt.Errorf("%s: not a file of int8 weights (format %q)", path, meta["format"])
	}
	wte, ok := tensors["transformer.wte.weight"]
	if !ok || len(wte.Shape) != 2 || wte.Shape[0] != cfg.VocabSize || wte.Shape[1] != cfg.NEmbd {
		return nil, fmt.Errorf("%s: no embedding of %d×%d", path, cfg.VocabSize, cfg.NEmbd)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newCached(cfg, e)
	if err != nil {
		return nil, err
	}
	if m.wte, err = wte.Float32s(); err != nil {
		return nil, err
	}
	// The shapes of the matrices, [out, in].
	C, qkv := cfg.NEmbd, (cfg.NHead+2*cfg.NKVHead)*cfg.HeadDim()
	m.lmHead = weight{out: cfg.VocabSize, in: C}
	for i := range m.blocks {
		m.blocks[i] = block{qkv: weight{out: qkv, in: C}, proj: weight{out: C, in: C}, fc: weight{out: 4 * C, in: C}, mproj: weight{out: C, in: 4 * C}}
	}
	names := m.int8Names()
	if len(tensors) != 1+2*len(names) {
		return nil, fmt.Errorf("%s: %d tensors, a model of %d layers has %d", path, len(tensors), cfg.NLayer, 1+2*len(names))
	}
	for name, wt := range names {
		q, scale := tensors[name+".q"], tensors[name+".scale"]
		if len(q.Shape) != 2 || q.Shape[0] != wt.out || q.Shape[1] != wt.in || len(scale.Shape) != 1 || scale.Shape[0] != wt.out {
			return nil, fmt.Errorf("%s: %s is %v with scales %v, want %d×%d", path, name, q.Shape, scale.Shape, wt.out, wt.in)
		}
		values, err := q.Int8s()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		scales, err := scale.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		wt.q, wt.f = &sgemm.Q8{Rows: wt.out, Cols: wt.in, Q: values, Scale: scales}, nil
	}
	return m, nil
}
