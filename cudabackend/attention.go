//go:build linux

package cudabackend

import (
	"fmt"
	"math"
	"strconv"

	"gochat/backend"
)

// The fused causal attention of attention.cu: its kernels are compiled for a bound on the
// head dim (128, which every nanochat model has, or 256) and for the engine's products
// (tensor cores in TF32, or strict float32 for the "cuda" engine) the first time a model
// needs them. These constants mirror attention.cu's.
const (
	attnFwdWarps = 8                      // warps of a forward block
	attnFwdBlock = 16 * attnFwdWarps      // queries of a forward block
	attnFwdTile  = 64                     // keys of a forward tile
	attnTile     = 32                     // queries of a backward tile
	attnFwdScr   = 16 * (attnFwdTile + 8) // floats of a forward warp's 16×attnFwdTile scratch, padded
	attnScratch  = 16 * (attnTile + 8)    // floats of a backward warp's 16×attnTile scratch, padded

	cuFuncAttributeMaxDynamicShared = 8 // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
)

// attnBound is the head-dim bound attention.cu is compiled with for head dim d, 0 past
// the largest.
func attnBound(d int) int {
	switch {
	case d <= 128:
		return 128
	case d <= 256:
		return 256
	}
	return 0
}

// attnBwdWarps is the warps of a backward block (each taking 16 keys) for head dim d: 8,
// or 4 past head dim 128, whose rows would take more shared memory than a block has.
func attnBwdWarps(d int) int {
	if attnBound(d) > 128 {
		return 4
	}
	return 8
}

// attnShared is the dynamic shared memory, in bytes, that kernel (attnForward,
// attnForwardCached or attnBackward) lays out at head dim d for an engine of precision
// prec, as attention.cu's bodies do, its rows as long as the bound the kernels are compiled
// for (attnBound) plus 8. In float32: staged rows and each warp's scratch. In bfloat16
// (the bf16 engine's forward passes, and its backward pass up to head dim 128): staged rows
// and the backward pass's dS, by rows of the key block's length + 8.
func attnShared(kernel string, d int, prec Precision) int {
	st, warps := attnBound(d)+8, attnBwdWarps(d)
	keys := 16 * warps // of a backward block
	switch {
	case kernel != "attnBackward" && prec == BF16: // K and V tiles
		return 2 * 2 * attnFwdTile * st
	case kernel != "attnBackward": // K and V tiles, P
		return f32 * (2*attnFwdTile*st + attnFwdWarps*attnFwdScr)
	case prec == BF16 && attnBound(d) == 128: // K and V blocks, Q and dY tiles, dS; the log-sum-exps and δ
		return 2*(2*keys*st+2*attnTile*st+attnTile*(keys+8)) + f32*2*attnTile
	default: // K and V blocks, Q and dY tiles, their log-sum-exps and δ, Pᵀ and dSᵀ
		return f32 * (2*keys*st + 2*attnTile*st + 2*attnTile + 2*warps*attnScratch)
	}
}

// attnForwardGrid is the forward kernels' grid for s: blocks of attnFwdBlock queries, by
// (batch row, head).
func attnForwardGrid(s backend.AttnShape) [2]int {
	return [2]int{(s.Tq + attnFwdBlock - 1) / attnFwdBlock, s.Batch * s.Heads}
}

// attnBackwardGrid is the backward kernel's grid for s: blocks of 16·attnBwdWarps keys, by
// (batch row, kv head).
func attnBackwardGrid(s backend.AttnShape) [2]int {
	keys := 16 * attnBwdWarps(s.HeadDim)
	return [2]int{(s.Tq + keys - 1) / keys, s.Batch * s.KVHeads}
}

func attnScale(s backend.AttnShape) float32 { return float32(1 / math.Sqrt(float64(s.HeadDim))) }

// attentionKernels are the kernels of attention.cu.
var attentionKernels = []string{"attnForward", "attnForwardCached", "attnBackward"}

// attentionOptions are the compiler's options for attention.cu at head-dim bound bound for
// an engine of precision prec: strict float32 products, TF32 tensor cores, or for bf16 the
// forward passes in bfloat16 (the backward pass in TF32).
func attentionOptions(bound int, prec Precision) []string {
	flag := func(on bool) string {
		if on {
			return "1"
		}
		return "0"
	}
	return []string{"-DATT_MAXD=" + strconv.Itoa(bound), "-DATT_TC=" + flag(prec != FP32), "-DATT_BF16=" + flag(prec == BF16)}
}

// attnKernel returns the name under which kernel is loaded for s, compiling attention.cu
// for s's head dim on first use and allowing the kernel the shared memory it lays out; it
// reports false, having recorded why, for a shape the kernels do not take. The caller
// holds b.mu.
func (e *Engine) attnKernel(kernel string, s backend.AttnShape) (string, bool) {
	bound := attnBound(s.HeadDim)
	if bound == 0 || s.Tq != s.Tk && kernel != "attnForwardCached" || s.Check() != nil {
		e.fail(fmt.Errorf("cuda attention: shape %+v: the kernels take whole causal sequences (or new queries against a cache), head dims up to 256", s))
		return "", false
	}
	suffix := "/" + strconv.Itoa(bound)
	name := kernel + suffix
	var err error
	if _, ok := e.functions[name]; !ok {
		e.b.w.wait(func() {
			err = e.load(attentionSource, "attention.cu", suffix, attentionKernels, attentionOptions(bound, e.b.prec)...)
		})
	}
	if need := attnShared(kernel, s.HeadDim, e.b.prec); err == nil && need > e.shared[name] {
		e.b.w.wait(func() {
			if code := e.drv.setAttribute(e.functions[name], cuFuncAttributeMaxDynamicShared, int32(need)); code != 0 {
				err = fmt.Errorf("cuda attention: head dim %d needs %d KiB of shared memory a block, more than %s allows (CUDA error %d)",
					s.HeadDim, need>>10, e.b.device, code)
				return
			}
			e.shared[name] = need
		})
	}
	if err != nil {
		e.fail(err)
		return "", false
	}
	return name, true
}

// AttentionForward implements backend.Kernels: one block per attnFwdBlock queries of each
// (batch row, head).
func (e *Engine) AttentionForward(s backend.AttnShape, qkv, y, lse []float32) {
	e.forwardAttention("attention forward", "attnForward", s, qkv, y, lse, s.Tq, s.Heads, s.KVHeads, s.HeadDim, attnScale(s))
}

// AttentionCached implements backend.Kernels: the forward kernel's blocks over the new
// queries, the keys and values read from the cache.
func (e *Engine) AttentionCached(s backend.AttnShape, capacity int, qkv, k, v, y, lse []float32) {
	e.forwardAttention("attention over the cache", "attnForwardCached", s,
		qkv, k, v, y, lse, s.Tq, s.Tk, s.Heads, s.KVHeads, s.HeadDim, capacity, attnScale(s))
}

// forwardAttention launches kernel, a forward attention kernel, with args for s: one block
// per attnFwdBlock queries of each (batch row, head), profiled under label.
func (e *Engine) forwardAttention(label, kernel string, s backend.AttnShape, args ...any) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	name, ok := e.attnKernel(kernel, s)
	if !ok {
		return
	}
	e.launchAs(label, name, attnForwardGrid(s), 32*attnFwdWarps, attnShared(kernel, s.HeadDim, e.b.prec), args...)
}

// StoreKV implements backend.Kernels with an elementwise kernel over the new keys.
func (e *Engine) StoreKV(s backend.AttnShape, capacity int, qkv, k, v []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	e.elementwise("storeKV", s.Batch*s.Tq*s.KVHeads*s.HeadDim, qkv, k, v, s.Batch, s.Tq, s.Tk-s.Tq, s.Heads, s.KVHeads, s.HeadDim, capacity)
}

// AttentionBackward implements backend.Kernels: δ = Σ dY·Y per query row and head, then,
// by key block of each (batch row, kv head), dK and dV and the blocks' shares of dQ, which
// add up in the cleared gradient.
func (e *Engine) AttentionBackward(s backend.AttnShape, qkv, y, dy, dqkv, lse []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	name, ok := e.attnKernel("attnBackward", s)
	if !ok {
		return
	}
	rows := s.Batch * s.Tq * s.Heads
	delta := e.reserve(scratchDelta, uint64(f32*rows))
	e.launch("attnDelta", warpBlocks(rows), rowThreads, delta, dy, y, rows, s.Tq, s.Heads, s.HeadDim)
	e.memset(e.ptr(dqkv), f32*len(dqkv))
	e.launchAs("attention backward", name, attnBackwardGrid(s), 32*attnBwdWarps(s.HeadDim), attnShared("attnBackward", s.HeadDim, e.b.prec),
		qkv, dy, lse, delta, dqkv, s.Tq, s.Heads, s.KVHeads, s.HeadDim, attnScale(s))
}
