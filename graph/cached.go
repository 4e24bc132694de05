package graph

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"gochat/backend"
	"gochat/internal/sgemm"
	"gochat/layers"

	"gorgonia.org/tensor"
)

// Cached is a GPT's weights laid out for generation: the forward pass of forward.go run at
// once on slices (sliceOps), through the kernels of the training ops (backend.Kernels: the
// host's, layers', or, once placed on a device, the engine's) and the engine's matrix
// products, with the keys and values of past positions read from a KVCache instead of
// recomputed.
type Cached struct {
	Config Config
	gemm   backend.Gemm
	host   kernels // the kernels of a pass in host memory: layers' Go kernels over gemm
	rotary *backend.RotaryTable
	wte    []float32
	blocks []block
	lmHead weight
	bufs   sync.Pool  // of *buffers in host memory: the activations of a pass, reused by the next
	placed *placement // the device engine that holds the matrices, once Place has run
}

// placement is a device engine holding a model's matrices (float32 or int8), a copy of its
// embedding and its KV caches, where Score's and Forward's passes run whole. The engine
// never gives memory back, so what the passes and caches take is kept here for the next:
// activation buffers, and the buffers of released caches.
type placement struct {
	e    backend.Backend
	wte  []float32
	mu   sync.Mutex
	bufs []*buffers  // activation buffers in e's memory, free for a pass
	free [][]float32 // the buffers of released caches, free for a new cache
}

// kernels are the kernels of a generation pass: the ops' and the int8 product.
type kernels interface {
	backend.Kernels
	backend.Int8Kernels
}

// block is one transformer layer's matrices; q, k and v are one matrix, as in the training
// graph.
type block struct{ qkv, proj, fc, mproj weight }

// weight is a matrix of a linear layer, [out, in] as PyTorch stores it, in float32 or, once
// the model is quantized, in int8 with a scale per row.
type weight struct {
	f       []float32
	q       *sgemm.Q8
	out, in int
}

// newWeight is the float32 matrix w of out rows.
func newWeight(w []float32, out int) weight { return weight{f: w, out: out, in: len(w) / out} }

// mul sets y (n×out) = x (n×in)·wᵀ: by gemm's product for float32 weights, by k's int8
// product for int8 ones.
func (w weight) mul(k backend.Int8Kernels, gemm backend.Gemm, n int, x, y []float32) {
	if w.q == nil {
		gemm.Sgemm(false, true, n, w.out, w.in, 1, x, w.in, w.f, w.in, 0, y, w.out)
		return
	}
	k.MulQ8T(n, x, w.q.Q, w.q.Scale, y)
}

// bytes is the memory of w's values.
func (w weight) bytes() int {
	if w.q != nil {
		return len(w.q.Q) + 4*len(w.q.Scale)
	}
	return 4 * len(w.f)
}

// quantize rounds w to int8 (sgemm.QuantizeQ8).
func (w *weight) quantize() error {
	q, err := sgemm.QuantizeQ8(w.f, w.out, w.in)
	if err != nil {
		return err
	}
	w.q, w.f = &q, nil
	return nil
}

// NewCached lays out the weights of a model of config cfg; its matrix products run on e.
func NewCached(cfg Config, w Weights, e backend.Gemm) (*Cached, error) {
	if err := cfg.Check(w); err != nil {
		return nil, err
	}
	m, err := newCached(cfg, e)
	if err != nil {
		return nil, err
	}
	C := cfg.NEmbd
	m.wte, m.lmHead = w["transformer.wte.weight"], newWeight(w["lm_head.weight"], cfg.VocabSize)
	for i := range cfg.NLayer {
		qkv, proj, fc, mproj := layerWeights(w, i)
		fused := slices.Concat(qkv[:]...)
		m.blocks[i] = block{qkv: newWeight(fused, len(fused)/C), proj: newWeight(proj, C), fc: newWeight(fc, 4*C), mproj: newWeight(mproj, C)}
	}
	return m, nil
}

// layerWeights are the weights of block i in w: q, k and v, which the model fuses into one
// matrix, the attention's output projection and the MLP's two.
func layerWeights(w Weights, i int) (qkv [3][]float32, proj, fc, mproj []float32) {
	p := fmt.Sprintf("transformer.h.%d.", i)
	return [3][]float32{w[p+"attn.c_q.weight"], w[p+"attn.c_k.weight"], w[p+"attn.c_v.weight"]},
		w[p+"attn.c_proj.weight"], w[p+"mlp.c_fc.weight"], w[p+"mlp.c_proj.weight"]
}

// newCached is a model of config cfg on e without its weights.
func newCached(cfg Config, e backend.Gemm) (*Cached, error) {
	table, err := backend.NewRotaryTable(cfg.RotaryLen(), cfg.HeadDim(), RotaryBase)
	if err != nil {
		return nil, err
	}
	return &Cached{Config: cfg, gemm: e, host: layers.NewHostOps[float32](e), rotary: table, blocks: make([]block, cfg.NLayer)}, nil
}

// Quantize rounds every matrix the model multiplies by (each block's and lm_head) to int8
// with a scale per row (sgemm.QuantizeQ8); the embedding, of which a token reads one row,
// stays float32. Products then read a quarter of the bytes (backend.Int8Kernels), on the
// processors or, once placed, on the device.
func (m *Cached) Quantize() error {
	if m.placed != nil {
		return fmt.Errorf("graph: quantize a model before placing it")
	}
	for _, w := range m.matrices() {
		if w.q != nil {
			continue
		}
		if err := w.quantize(); err != nil {
			return err
		}
	}
	return nil
}

// matrices are the matrices the model multiplies by: each block's and lm_head.
func (m *Cached) matrices() []*weight {
	all := []*weight{&m.lmHead}
	for i := range m.blocks {
		b := &m.blocks[i]
		all = append(all, &b.qkv, &b.proj, &b.fc, &b.mproj)
	}
	return all
}

// Place copies the model's matrices (float32 or int8) and its embedding into e's memory
// when e keeps its tensors on a device (a backend.DeviceMemory: the CUDA engine): then
// Score's passes, and Forward's on the caches NewKVCache makes from then on (in the
// device's memory too), run on the device whole. On other engines Place does nothing. Place it where it is again does nothing; on another engine, is an error. Place
// models that stay: an engine does not give its memory back.
func (m *Cached) Place(e backend.Backend) error {
	if _, device := e.(backend.DeviceMemory); !device || m.placed != nil && m.placed.e == e {
		return nil
	}
	if m.placed != nil {
		return fmt.Errorf("graph: the model's matrices are in %s's memory, not %s's", m.placed.e.Name(), e.Name())
	}
	var err error
	put := func(x []float32) []float32 {
		placed := e.Make(tensor.Float32, len(x)).([]float32)
		err = cmp.Or(err, backend.Write(e, placed, x))
		return placed
	}
	m.placed = &placement{e: e, wte: put(m.wte)}
	for _, w := range m.matrices() {
		if w.q == nil {
			w.f = put(w.f)
			continue
		}
		q := e.Make(tensor.Int8, len(w.q.Q)).([]int8)
		err = cmp.Or(err, backend.Write(e, q, w.q.Q))
		w.q = &sgemm.Q8{Rows: w.q.Rows, Cols: w.q.Cols, Q: q, Scale: put(w.q.Scale)}
	}
	return cmp.Or(err, e.Sync())
}

// Update sets the model's weights to w, host memory of a model of its config (training's
// weights as they are now, Model.HostWeights), where they lie: RL samples with the weights
// of each step through one model placed once, where placing a new one each step would take
// new device memory each time. The model's host weights are the slices it was made from
// (NewCached keeps them, but for q|k|v), and Update writes into those too. An int8 model
// cannot be updated.
func (m *Cached) Update(w Weights) error {
	if err := m.Config.Check(w); err != nil {
		return err
	}
	if m.quantized() {
		return fmt.Errorf("graph: an int8 model's weights cannot be updated")
	}
	var device any // where the matrices lie: the host's memory (nil) or the placement's
	if m.placed != nil {
		device = m.placed.e
	}
	copy(m.wte, w["transformer.wte.weight"])
	err := backend.Write(device, m.lmHead.f, w["lm_head.weight"])
	if m.placed != nil {
		err = cmp.Or(err, backend.Write(device, m.placed.wte, m.wte))
	}
	for i := range m.blocks {
		b := &m.blocks[i]
		qkv, proj, fc, mproj := layerWeights(w, i)
		at := 0
		for _, part := range qkv {
			err = cmp.Or(err, backend.Write(device, b.qkv.f[at:at+len(part)], part))
			at += len(part)
		}
		err = cmp.Or(err, backend.Write(device, b.proj.f, proj), backend.Write(device, b.fc.f, fc), backend.Write(device, b.mproj.f, mproj))
	}
	if err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	return nil
}

// NanochatRotary makes the model rotate with bfloat16 cos and sin tables, as nanochat's
// forward does, so that what it computes is what nanochat computes on the same weights
// (evaluation meant to equal nanochat's); gochat trains with float32 tables.
func (m *Cached) NanochatRotary() { m.rotary = m.rotary.BFloat16() }

// WeightBytes is the size of the weights one decoded token reads: every matrix but the
// embedding table, of which it reads a row.
func (m *Cached) WeightBytes() int {
	n := m.lmHead.bytes() + 4*m.Config.NEmbd
	for _, b := range m.blocks {
		n += b.qkv.bytes() + b.proj.bytes() + b.fc.bytes() + b.mproj.bytes()
	}
	return n
}

// Forward runs T new tokens of each of the cache's rows (ids, row-major B×T) at the cache's
// position, appends their keys and values to the cache, and returns the softcapped logits
// of each row's last new token (B×vocab).
func (m *Cached) Forward(c *KVCache, ids []int, T int) ([]float32, error) {
	return m.forward(c, ids, T, false)
}

// ForwardAll is Forward returning the logits of every new token (B·T×vocab).
func (m *Cached) ForwardAll(c *KVCache, ids []int, T int) ([]float32, error) {
	return m.forward(c, ids, T, true)
}

func (m *Cached) forward(c *KVCache, ids []int, T int, all bool) ([]float32, error) {
	cfg := m.Config
	B, C := c.Batch, cfg.NEmbd
	if err := m.check(ids, B, T, c.Pos); err != nil {
		return nil, err
	}
	c.reserve(c.Pos + T)
	o, done, device, err := m.begin(c, ids, B, T)
	defer done()
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	x := trunk[[]float32](o, cfg.NLayer)
	c.Pos += T
	rows := x
	if !all { // the last token of each row
		rows = o.bufs.get(B * C)
		for b := range B {
			o.k.Copy(rows[b*C:(b+1)*C], x[(b*T+T-1)*C:(b*T+T)*C])
		}
	}
	n := len(rows) / C * cfg.VocabSize
	if device == nil {
		logits := make([]float32, n)
		o.head(rows, logits)
		return logits, nil
	}
	logits := o.bufs.get(n)
	o.head(rows, logits)
	host := make([]float32, n)
	if err := backend.Read(device.e, host, logits); err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return host, nil
}

// Score runs B whole rows of T tokens (ids, row-major) from their first position, with no
// cache, and hands judge the softcapped logits of every position (B·T rows of vocab),
// which are the model's again once judge returns: what scoring text needs (CORE, the
// categorical chat evaluations, losses). On a device engine the model is placed on
// (Place), with float32 matrices, the whole pass runs there and judge reads the rows it
// needs from the device; elsewhere it runs in host memory.
func (m *Cached) Score(ids []int, B, T int, judge func(Logits) error) error {
	if err := m.check(ids, B, T, 0); err != nil {
		return err
	}
	o, done, device, err := m.begin(nil, ids, B, T)
	defer done()
	if err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	x := trunk[[]float32](o, m.Config.NLayer)
	logits := o.bufs.get(B * T * m.Config.VocabSize)
	o.head(x, logits)
	l := HostLogits(logits, m.Config.VocabSize)
	if device != nil {
		l.engine = device.e
	}
	return judge(l)
}

// Logits are the logits of a Score pass, rows of the vocabulary's size where the pass left
// them (host memory, or the device's).
type Logits struct {
	engine any // the device engine holding them, or nil
	data   []float32
	vocab  int
}

// HostLogits are rows of logits of vocab values each in host memory, as Score hands over
// from a pass on the host.
func HostLogits(rows []float32, vocab int) Logits { return Logits{data: rows, vocab: vocab} }

// Len is the number of rows.
func (l Logits) Len() int { return len(l.data) / l.vocab }

// Vocab is the length of a row.
func (l Logits) Vocab() int { return l.vocab }

// Rows returns rows lo to hi (exclusive) where the host reads them: in place in host
// memory, else a copy from the device of those rows alone.
func (l Logits) Rows(lo, hi int) ([]float32, error) {
	if lo < 0 || hi > l.Len() || lo > hi {
		return nil, fmt.Errorf("graph: logits rows %d to %d of %d", lo, hi, l.Len())
	}
	rows, err := backend.Readable(l.engine, l.data[lo*l.vocab:hi*l.vocab])
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return rows, nil
}

// check refuses a pass of ids that are not B rows of T tokens of the vocabulary from
// position pos, or that reaches beyond the rotary table.
func (m *Cached) check(ids []int, B, T, pos int) error {
	if B <= 0 || T <= 0 || len(ids) != B*T {
		return fmt.Errorf("graph: %d ids for %d rows of %d tokens", len(ids), B, T)
	}
	if pos+T > m.rotary.Len {
		return fmt.Errorf("graph: position %d is beyond the model's rotary table of %d positions", pos+T, m.rotary.Len)
	}
	return layers.CheckIDs("token id", ids, m.Config.VocabSize, false)
}

// quantized tells whether the model's matrices are int8.
func (m *Cached) quantized() bool { return m.lmHead.q != nil }

// begin is the operations of a pass over cache c (nil: none), where it runs: on the device
// the cache lies on, or with no cache on the device the model is placed on (returned), else
// in host memory (nil); and the function that gives its buffers back, to be called even
// when the ids could not be copied to the device (the error).
func (m *Cached) begin(c *KVCache, ids []int, B, T int) (*sliceOps, func(), *placement, error) {
	device := m.placed
	if c != nil {
		device = c.device
	}
	o := &sliceOps{m: m, k: m.host, gemm: m.gemm, wte: m.wte, c: c, ids: ids, B: B, T: T}
	if c != nil {
		o.pos = c.Pos
	}
	if device == nil {
		o.bufs, _ = m.bufs.Get().(*buffers)
		if o.bufs == nil {
			o.bufs = &buffers{alloc: func(n int) []float32 { return make([]float32, n, n+n/4) }}
		}
		o.bufs.next = 0
		return o, func() { m.bufs.Put(o.bufs) }, nil, nil
	}
	o.k, o.gemm, o.wte, o.bufs = device.e, device.e, device.wte, device.buffers()
	if cap(o.bufs.ids) < len(ids) {
		o.bufs.ids = device.e.Make(tensor.Int, 2*len(ids)).([]int)
	}
	o.bufs.ids = o.bufs.ids[:len(ids)]
	o.ids = o.bufs.ids
	return o, func() {
		device.mu.Lock()
		defer device.mu.Unlock()
		device.bufs = append(device.bufs, o.bufs)
	}, device, backend.Write(device.e, o.bufs.ids, ids)
}

// buffers are activation buffers of the device's for a pass: a set a pass gave back, else a
// new one.
func (p *placement) buffers() *buffers {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.bufs); n > 0 {
		b := p.bufs[n-1]
		p.bufs = p.bufs[:n-1]
		b.next = 0
		return b
	}
	// A buffer grown twice what is asked leaves at most as much behind as it holds.
	return &buffers{alloc: func(n int) []float32 { return p.e.Make(tensor.Float32, 2*n).([]float32)[:n] }}
}

// take returns n zeroed elements of the device's memory: the smallest buffer of a released
// cache that holds them, else new memory with a quarter more capacity, so that a later
// cache somewhat larger (a longer prompt) fits in it.
func (p *placement) take(n int) []float32 {
	p.mu.Lock()
	best := -1
	for i, x := range p.free {
		if cap(x) >= n && (best < 0 || cap(x) < cap(p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		x := p.free[best][:n]
		p.free = append(p.free[:best], p.free[best+1:]...)
		p.mu.Unlock()
		p.e.Zero(x)
		return x
	}
	p.mu.Unlock()
	return p.e.Make(tensor.Float32, n+n/4).([]float32)[:n]
}

// give keeps x, a cache's buffer, for a later cache.
func (p *placement) give(x []float32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, x[:cap(x)])
}

// CachedScorer scores batches of Rows rows of SeqLen tokens with a generation model: the
// loss of each position from its logits, as an Eval graph gives them (train.Scorer), for
// what only the generation model has (int8 weights).
type CachedScorer struct {
	Model        *Cached
	Rows, SeqLen int
}

// Shape is the batch the scorer takes.
func (s *CachedScorer) Shape() (rows, seqLen int) { return s.Rows, s.SeqLen }

// TokenLosses scores each row on its own (Score) and returns each position's loss
// (layers.IgnoreIndex targets: 0). A row at a time: the logits of one row (SeqLen × vocab)
// are what it holds at once.
func (s *CachedScorer) TokenLosses(ids, targets []int) ([]float32, error) {
	T := s.SeqLen
	if len(ids) != s.Rows*T || len(targets) != len(ids) {
		return nil, fmt.Errorf("graph: %d ids and %d targets for %d rows of %d tokens", len(ids), len(targets), s.Rows, T)
	}
	losses := make([]float32, len(ids))
	for r := range s.Rows {
		err := s.Model.Score(ids[r*T:(r+1)*T], 1, T, func(l Logits) error {
			logits, err := l.Rows(0, T)
			if err != nil {
				return err
			}
			return layers.CrossEntropyForward(losses[r*T:(r+1)*T], logits, targets[r*T:(r+1)*T], s.Model.Config.VocabSize, 0, nil, nil)
		})
		if err != nil {
			return nil, err
		}
	}
	return losses, nil
}

// buffers are the activations of one pass, kept for a later one: the i-th request of a
// pass gets the i-th buffer, grown to the size asked, with room to spare that alloc
// gives: decoding asks for one more position of attention scores each token, and a new
// buffer each time (allocated and cleared) took a sixth of a d12 token's time. ids holds
// a device pass's token ids.
type buffers struct {
	held  [][]float32
	next  int
	alloc func(n int) []float32 // n elements or more of capacity
	ids   []int
}

func (b *buffers) get(n int) []float32 {
	if b.next == len(b.held) {
		b.held = append(b.held, nil)
	}
	if cap(b.held[b.next]) < n {
		b.held[b.next] = b.alloc(n)
	}
	out := b.held[b.next][:n]
	b.next++
	return out
}

// sliceOps are the forward pass's operations computed at once, by the kernels k (the
// host's or a device engine's, in whose memory the buffers and wte are), on rows of T new
// tokens of each of B rows from position pos: of the cache c's rows, or with c nil of
// whole rows from position 0, attending only to each other.
type sliceOps struct {
	m    *Cached
	k    kernels
	gemm backend.Gemm
	wte  []float32
	c    *KVCache
	bufs *buffers
	ids  []int
	B, T int
	pos  int
}

func (o *sliceOps) rows() int { return o.B * o.T }

func (o *sliceOps) embed() []float32 {
	C := o.m.Config.NEmbd
	x := o.bufs.get(o.rows() * C)
	o.k.EmbeddingForward(x, o.wte, o.ids, C) // the ids were checked
	return x
}

func (o *sliceOps) norm(x []float32) []float32 {
	C := o.m.Config.NEmbd
	y := o.bufs.get(len(x))
	o.k.RMSNormForward(y, nil, x, C, C, 1)
	return y
}

func (o *sliceOps) linear(x []float32, w matrix) []float32 {
	b := o.m.blocks[w.layer]
	weights := [...]weight{qkvMatrix: b.qkv, projMatrix: b.proj, fcMatrix: b.fc, mlpProjMatrix: b.mproj}[w.which]
	N := o.rows()
	y := o.bufs.get(N * weights.out)
	weights.mul(o.k, o.gemm, N, x, y)
	return y
}

// width is the length of a q|k|v row.
func (o *sliceOps) width() int {
	c := o.m.Config
	return (c.NHead + 2*c.NKVHead) * c.HeadDim()
}

func (o *sliceOps) rotary(qkv []float32) []float32 {
	c := o.m.Config
	o.k.RotaryForward(qkv, qkv, o.width(), backend.Rotation{Table: o.m.rotary, SeqLen: o.T, Pos0: o.pos, Heads: c.NHead + c.NKVHead}, false)
	return qkv
}

func (o *sliceOps) qkNorm(qkv []float32) []float32 {
	c := o.m.Config
	o.k.RMSNormForward(qkv, nil, qkv, o.width(), c.HeadDim(), c.NHead+c.NKVHead)
	return qkv
}

// attention attends over the rows' own keys when there is no cache, with the kernel the
// training graph's attention runs; with a cache, it appends the keys and values of the new
// positions to layer l of the cache and attends over all the cache holds.
func (o *sliceOps) attention(l int, qkv []float32) []float32 {
	c, T := o.m.Config, o.T
	H, D := c.NHead, c.HeadDim()
	shape := backend.AttnShape{Batch: o.B, Heads: H, KVHeads: c.NKVHead, HeadDim: D, Tq: T, Tk: o.pos + T}
	y, lse := o.bufs.get(o.rows()*H*D), o.bufs.get(o.B*H*T)
	if cache := o.c; cache != nil {
		o.k.StoreKV(shape, cache.capacity, qkv, cache.k[l], cache.v[l])
		o.k.AttentionCached(shape, cache.capacity, qkv, cache.k[l], cache.v[l], y, lse)
	} else {
		o.k.AttentionForward(shape, qkv, y, lse)
	}
	return y
}

func (o *sliceOps) add(a, b []float32) []float32 {
	o.k.AddForward(a, a, b)
	return a
}

func (o *sliceOps) block(_ int, x []float32, body func([]float32) []float32) []float32 {
	return body(x)
}

func (o *sliceOps) relu2(x []float32) []float32 {
	o.k.ReLU2Forward(x, x)
	return x
}

// head sets logits to the softcapped lm_head of the rows of x.
func (o *sliceOps) head(x, logits []float32) {
	o.m.lmHead.mul(o.k, o.gemm, len(x)/o.m.Config.NEmbd, x, logits)
	o.k.SoftcapForward(logits, logits, LogitSoftcap)
}

// KVCache holds the keys and values of the positions a model has seen, for Batch rows:
// per layer, (Batch, n_kv_head, capacity, head_dim), each head's positions side by side, so
// that attending to them streams through memory. It grows in blocks of 1024 positions,
// keeping what it holds. A cache of a model placed on a device (Place) lies in the device's
// memory, where Forward then runs whole; Release gives that memory back for later caches.
type KVCache struct {
	Batch, Width int // rows; n_kv_head·head_dim
	Pos          int // positions filled
	capacity     int
	heads, dim   int // n_kv_head, head_dim
	k, v         [][]float32
	device       *placement // where k and v lie, nil for host memory
}

// KVGrowth is the block of positions a KVCache grows by.
const KVGrowth = 1024

// NewKVCache makes an empty cache for batch rows of model m, with room for capacity
// positions before it first grows: in the device's memory when m is placed on one.
func (m *Cached) NewKVCache(batch, capacity int) *KVCache {
	return m.newKVCache(batch, capacity, m.placed)
}

// newKVCache is NewKVCache in device's memory (nil: the host's).
func (m *Cached) newKVCache(batch, capacity int, device *placement) *KVCache {
	cfg := m.Config
	c := &KVCache{Batch: batch, Width: cfg.NKVHead * cfg.HeadDim(), heads: cfg.NKVHead, dim: cfg.HeadDim(),
		k: make([][]float32, cfg.NLayer), v: make([][]float32, cfg.NLayer), device: device}
	c.reserve(max(capacity, 1))
	return c
}

// Capacity is the number of positions the cache holds before it grows again.
func (c *KVCache) Capacity() int { return c.capacity }

// Release gives a device cache's memory back for later caches of the model (the host's
// is the garbage collector's); the cache is then empty, and grows anew when used.
func (c *KVCache) Release() {
	for l := range c.k {
		if c.device != nil && c.k[l] != nil {
			c.device.give(c.k[l])
			c.device.give(c.v[l])
		}
		c.k[l], c.v[l] = nil, nil
	}
	c.Pos, c.capacity = 0, 0
}

// reserve makes room for n positions: the capacity becomes n rounded up to a whole number
// of blocks, with a block to spare, and every row's positions are moved into place.
func (c *KVCache) reserve(n int) {
	if n <= c.capacity {
		return
	}
	grown := (n + KVGrowth + KVGrowth - 1) / KVGrowth * KVGrowth
	if c.capacity == 0 {
		grown = n
	}
	for l := range c.k {
		c.k[l], c.v[l] = c.regrow(c.k[l], grown), c.regrow(c.v[l], grown)
	}
	c.capacity = grown
}

// regrow moves the positions filled of each (row, head) lane of old into a cache of the
// given capacity.
func (c *KVCache) regrow(old []float32, capacity int) []float32 {
	out := c.alloc(c.Batch * capacity * c.Width)
	for lane := range c.Batch * c.heads {
		from := lane * c.capacity * c.dim
		c.copy(out[lane*capacity*c.dim:][:c.Pos*c.dim], old[from:from+c.Pos*c.dim])
	}
	if c.device != nil && old != nil {
		c.device.give(old)
	}
	return out
}

// alloc is n zeroed elements where the cache lies.
func (c *KVCache) alloc(n int) []float32 {
	if c.device != nil {
		return c.device.take(n)
	}
	return make([]float32, n)
}

// copy copies src into dst where the cache lies.
func (c *KVCache) copy(dst, src []float32) {
	if len(src) == 0 {
		return
	}
	if c.device != nil {
		c.device.e.Copy(dst, src)
		return
	}
	copy(dst, src)
}

// Fill copies the one row of src into every row of c, which must be empty and lie where
// src lies: a prompt computed once serves a batch of samples.
func (c *KVCache) Fill(src *KVCache) error {
	if src.Batch != 1 || src.Width != c.Width || src.heads != c.heads || len(src.k) != len(c.k) || c.Pos != 0 || src.device != c.device {
		return fmt.Errorf("graph: cannot fill a cache of %d rows at position %d from one of %d rows (or of another model, or in other memory)", c.Batch, c.Pos, src.Batch)
	}
	c.reserve(src.Pos)
	n := src.Pos * c.dim
	for l := range c.k {
		for b := range c.Batch {
			for g := range c.heads {
				at, from := (b*c.heads+g)*c.capacity*c.dim, g*src.capacity*c.dim
				c.copy(c.k[l][at:at+n], src.k[l][from:from+n])
				c.copy(c.v[l][at:at+n], src.v[l][from:from+n])
			}
		}
	}
	c.Pos = src.Pos
	return nil
}
