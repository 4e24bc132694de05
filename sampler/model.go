// Package sampler generates text with a trained model: a KV-cached forward pass through
// the training kernels, sampling, and nanochat's generation engine with its calculator tool.
package sampler

import (
	"fmt"

	"gochat/graph"
	"gochat/layers"
)

// Model is a GPT's weights laid out for generation: nanochat's forward pass, one layer
// after another, through the kernels of the training ops (layers.*Forward, the engine's
// matrix products and layers.AttentionForward), with the keys and values of past positions
// read from a KVCache instead of recomputed.
type Model struct {
	Config graph.Config
	gemm   layers.Gemm
	rotary *layers.RotaryTable
	wte    []float32
	blocks []block
	lmHead []float32
}

// block is one transformer layer's matrices, [out, in] as PyTorch stores them; q, k and v
// are one matrix, as in the training graph.
type block struct{ qkv, proj, fc, mproj []float32 }

// NewModel lays out the weights of a model of config cfg; its matrix products run on e.
func NewModel(cfg graph.Config, w graph.Weights, e layers.Gemm) (*Model, error) {
	if err := cfg.Check(w); err != nil {
		return nil, err
	}
	table, err := layers.NewRotaryTable(cfg.RotaryLen(), cfg.HeadDim(), graph.RotaryBase)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, gemm: e, rotary: table, wte: w["transformer.wte.weight"], lmHead: w["lm_head.weight"]}
	for i := range cfg.NLayer {
		p := fmt.Sprintf("transformer.h.%d.", i)
		qkv := append(append(append([]float32(nil), w[p+"attn.c_q.weight"]...), w[p+"attn.c_k.weight"]...), w[p+"attn.c_v.weight"]...)
		m.blocks = append(m.blocks, block{qkv: qkv, proj: w[p+"attn.c_proj.weight"], fc: w[p+"mlp.c_fc.weight"], mproj: w[p+"mlp.c_proj.weight"]})
	}
	return m, nil
}

// WeightBytes is the size of the weights one decoded token reads: every matrix but the
// embedding table, of which it reads a row.
func (m *Model) WeightBytes() int {
	n := len(m.lmHead) + m.Config.NEmbd
	for _, b := range m.blocks {
		n += len(b.qkv) + len(b.proj) + len(b.fc) + len(b.mproj)
	}
	return 4 * n
}

// Forward runs T new tokens of each of the cache's rows (ids, row-major B×T) at the cache's
// position, appends their keys and values to the cache, and returns the softcapped logits
// of each row's last new token (B×vocab).
func (m *Model) Forward(c *KVCache, ids []int, T int) ([]float32, error) {
	return m.forward(c, ids, T, false)
}

// ForwardAll is Forward returning the logits of every new token (B·T×vocab).
func (m *Model) ForwardAll(c *KVCache, ids []int, T int) ([]float32, error) {
	return m.forward(c, ids, T, true)
}

func (m *Model) forward(c *KVCache, ids []int, T int, all bool) ([]float32, error) {
	cfg := m.Config
	B, C, D := c.Batch, cfg.NEmbd, cfg.HeadDim()
	H, KV := cfg.NHead, cfg.NKVHead
	if T <= 0 || len(ids) != B*T {
		return nil, fmt.Errorf("sampler: %d ids for %d rows of %d tokens", len(ids), B, T)
	}
	if c.Pos+T > m.rotary.Len {
		return nil, fmt.Errorf("sampler: position %d is beyond the model's rotary table of %d positions", c.Pos+T, m.rotary.Len)
	}
	c.reserve(c.Pos + T)
	N, W := B*T, (H+2*KV)*D
	x := make([]float32, N*C)
	if err := layers.EmbeddingForward(x, m.wte, ids, C); err != nil {
		return nil, err
	}
	layers.RMSNormForward(x, x, C, C, 1)
	h := make([]float32, N*C)
	qkv := make([]float32, N*W)
	y := make([]float32, N*H*D)
	f := make([]float32, N*4*C)
	shape := layers.AttnShape{Batch: B, Heads: H, KVHeads: KV, HeadDim: D, Tq: T, Tk: c.Pos + T}
	lse := make([]float32, B*H*T)
	scratch := make([]float32, layers.AttnScratch(shape))
	for l, blk := range m.blocks {
		// Attention: q|k|v in one product, rotary at the cache's positions, QK norm.
		layers.RMSNormForward(h, x, C, C, 1)
		m.gemm.Sgemm(false, true, N, W, C, 1, h, C, blk.qkv, C, 0, qkv, W)
		layers.RotaryForward(qkv, qkv, W, layers.Rotation{Table: m.rotary, SeqLen: T, Pos0: c.Pos, Heads: H + KV}, false)
		layers.RMSNormForward(qkv, qkv, W, D, H+KV)
		c.store(l, qkv, T, H*D)
		kv := c.Width
		q := layers.View[float32]{Data: qkv, Batch: T * W, Row: W}
		k := layers.View[float32]{Data: c.k[l], Batch: c.capacity * kv, Row: kv}
		v := layers.View[float32]{Data: c.v[l], Batch: c.capacity * kv, Row: kv}
		out := layers.View[float32]{Data: y, Batch: T * H * D, Row: H * D}
		layers.AttentionForward(m.gemm, shape, q, k, v, out, lse, scratch)
		m.gemm.Sgemm(false, true, N, C, C, 1, y, C, blk.proj, C, 0, h, C)
		layers.AddForward(x, x, h)
		// MLP.
		layers.RMSNormForward(h, x, C, C, 1)
		m.gemm.Sgemm(false, true, N, 4*C, C, 1, h, C, blk.fc, C, 0, f, 4*C)
		layers.ReLU2Forward(f, f)
		m.gemm.Sgemm(false, true, N, C, 4*C, 1, f, 4*C, blk.mproj, 4*C, 0, h, C)
		layers.AddForward(x, x, h)
	}
	c.Pos += T
	rows := x
	if !all { // the last token of each row
		rows = make([]float32, B*C)
		for b := range B {
			copy(rows[b*C:(b+1)*C], x[(b*T+T-1)*C:(b*T+T)*C])
		}
	}
	n := len(rows) / C
	layers.RMSNormForward(rows, rows, C, C, 1)
	logits := make([]float32, n*cfg.VocabSize)
	m.gemm.Sgemm(false, true, n, cfg.VocabSize, C, 1, rows, C, m.lmHead, C, 0, logits, cfg.VocabSize)
	layers.SoftcapForward(logits, logits, graph.LogitSoftcap)
	return logits, nil
}

// KVCache holds the keys and values of the positions a model has seen, for Batch rows:
// per layer, (Batch, capacity, n_kv_head·head_dim). It grows in blocks of 1024 positions,
// keeping what it holds.
type KVCache struct {
	Batch, Width int // rows; n_kv_head·head_dim
	Pos          int // positions filled
	capacity     int
	k, v         [][]float32
}

// growth is the block the cache grows by.
const growth = 1024

// NewKVCache makes an empty cache for batch rows of model m, with room for capacity
// positions before it first grows.
func (m *Model) NewKVCache(batch, capacity int) *KVCache {
	c := &KVCache{Batch: batch, Width: m.Config.NKVHead * m.Config.HeadDim(), k: make([][]float32, m.Config.NLayer), v: make([][]float32, m.Config.NLayer)}
	c.reserve(max(capacity, 1))
	return c
}

// reserve makes room for n positions: the capacity becomes n rounded up to a whole number
// of blocks, with a block to spare, and every row's positions are moved into place.
func (c *KVCache) reserve(n int) {
	if n <= c.capacity {
		return
	}
	grown := (n + growth + growth - 1) / growth * growth
	if c.capacity == 0 {
		grown = n
	}
	for l := range c.k {
		c.k[l], c.v[l] = c.regrow(c.k[l], grown), c.regrow(c.v[l], grown)
	}
	c.capacity = grown
}

func (c *KVCache) regrow(old []float32, capacity int) []float32 {
	out := make([]float32, c.Batch*capacity*c.Width)
	for b := range c.Batch {
		copy(out[b*capacity*c.Width:], old[b*c.capacity*c.Width:b*c.capacity*c.Width+c.Pos*c.Width])
	}
	return out
}

// store copies the keys and values of T new positions per row out of the fused q|k|v rows
// (keys start at column offset) into layer l at the cache's position.
func (c *KVCache) store(l int, qkv []float32, T, offset int) {
	W := offset + 2*c.Width
	for b := range c.Batch {
		for t := range T {
			row := qkv[(b*T+t)*W:]
			at := (b*c.capacity + c.Pos + t) * c.Width
			copy(c.k[l][at:at+c.Width], row[offset:offset+c.Width])
			copy(c.v[l][at:at+c.Width], row[offset+c.Width:offset+2*c.Width])
		}
	}
}

// Fill copies the one row of src into every row of c, which must be empty: a prompt
// computed once serves a batch of samples.
func (c *KVCache) Fill(src *KVCache) error {
	if src.Batch != 1 || src.Width != c.Width || len(src.k) != len(c.k) || c.Pos != 0 {
		return fmt.Errorf("sampler: cannot fill a cache of %d rows at position %d from one of %d rows", c.Batch, c.Pos, src.Batch)
	}
	c.reserve(src.Pos)
	for l := range c.k {
		for b := range c.Batch {
			at := b * c.capacity * c.Width
			copy(c.k[l][at:at+src.Pos*c.Width], src.k[l][:src.Pos*c.Width])
			copy(c.v[l][at:at+src.Pos*c.Width], src.v[l][:src.Pos*c.Width])
		}
	}
	c.Pos = src.Pos
	return nil
}
