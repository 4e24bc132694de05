//go:build linux

package cudabackend

import (
	"fmt"
	"gochat/backend"
	"math"
)

// attnScores bounds the score matrices held at once: the batch rows are taken in chunks
// whose B·H·T·T scores fit 2^28 floats (1 GiB), twice (scores and their gradients).
const attnScores = 1 << 28

// attnLayout locates one chunk of batch rows of the attention in a fused q|k|v tensor
// (rows of w = (H + 2·KV)·D), the output y (rows of H·D) and the score matrices (T×T per
// batch row and head).
type attnLayout struct {
	s                 backend.AttnShape
	scores, grads     uintptr
	w, hd, rep, b0, n int // row widths, heads per kv head, first batch row and rows in the chunk
}

const f32 = 4 // bytes of a float32

// addr says where one matrix of a batched product lies, by batch row of the chunk and head.
type addr func(b, h int) uintptr

// q, k and v locate the heads of a fused q|k|v tensor at base (k and v by the query head
// that reads them); out those of an output (or its gradient); score the score matrices.
func (l attnLayout) q(base uintptr) addr {
	return func(b, h int) uintptr { return base + uintptr(f32*((l.b0+b)*l.s.Tq*l.w+h*l.s.HeadDim)) }
}
func (l attnLayout) k(base uintptr) addr {
	return func(b, h int) uintptr { return l.q(base)(b, l.s.Heads+h/l.rep) }
}
func (l attnLayout) v(base uintptr) addr {
	return func(b, h int) uintptr { return l.q(base)(b, l.s.Heads+l.s.KVHeads+h/l.rep) }
}
func (l attnLayout) out(base uintptr) addr {
	return func(b, h int) uintptr { return base + uintptr(f32*((l.b0+b)*l.s.Tq*l.hd+h*l.s.HeadDim)) }
}
func (l attnLayout) score(base uintptr) addr {
	return func(b, h int) uintptr { return base + uintptr(f32*((b*l.s.Heads+h)*l.s.Tq*l.s.Tq)) }
}

// pairs builds a batch over every (batch row, head) of the chunk.
func (l attnLayout) pairs(a, b, c addr) batch {
	var bt batch
	for i := 0; i < l.n; i++ {
		for h := 0; h < l.s.Heads; h++ {
			bt.add(a(i, h), b(i, h), c(i, h))
		}
	}
	return bt
}

// chunks calls fn for each chunk of batch rows, with the score buffers reserved.
func (e *Engine) attnChunks(s backend.AttnShape, grads bool, fn func(l attnLayout)) {
	if s.Tq != s.Tk || s.Heads%s.KVHeads != 0 {
		e.fail(fmt.Errorf("cuda attention: shape %+v is not a whole causal sequence", s))
		return
	}
	per := s.Heads * s.Tq * s.Tq
	rows := max(1, min(s.Batch, attnScores/per))
	l := attnLayout{s: s, w: (s.Heads + 2*s.KVHeads) * s.HeadDim, hd: s.Heads * s.HeadDim, rep: s.Heads / s.KVHeads}
	l.scores = e.reserve(scratchScores, uint64(f32*rows*per))
	if grads {
		l.grads = e.reserve(scratchGrads, uint64(f32*rows*per))
	}
	for l.b0 = 0; l.b0 < s.Batch; l.b0 += rows {
		l.n = min(rows, s.Batch-l.b0)
		fn(l)
	}
}

// AttentionForward implements backend.Kernels: per chunk, S = QKᵀ/√D for every head as one
// batched product, the causal softmax in place (saving each row's log-sum-exp), Y = P·V.
func (e *Engine) AttentionForward(s backend.AttnShape, qkv, y, lse []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	T, D := s.Tq, s.HeadDim
	scale := float32(1 / math.Sqrt(float64(D)))
	pq, py, pl := e.ptr(qkv), e.ptr(y), e.ptr(lse)
	e.attnChunks(s, false, func(l attnLayout) {
		Q, K, V, S, Y := l.q(pq), l.k(pq), l.v(pq), l.score(l.scores), l.out(py)
		e.batched("attention", false, true, T, T, D, scale, l.w, l.w, 0, T, l.pairs(Q, K, S))
		e.launch("causalSoftmax", l.n*s.Heads*T, rowThreads, l.scores, pl+uintptr(f32*l.b0*s.Heads*T), T)
		e.batched("attention", false, false, T, D, T, 1, T, l.w, 0, l.hd, l.pairs(S, V, Y))
	})
}

// AttentionBackward implements backend.Kernels: per chunk the probabilities are recomputed
// from the saved log-sum-exps, dS = P ⊙ (dY·Vᵀ − δ), dQ = dS·K/√D, and dK = dSᵀ·Q/√D and
// dV = Pᵀ·dY, which the heads of one kv head add up in turn (a batch never writes one
// matrix twice).
func (e *Engine) AttentionBackward(s backend.AttnShape, qkv, y, dy, dqkv, lse []float32) {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	T, D := s.Tq, s.HeadDim
	scale := float32(1 / math.Sqrt(float64(D)))
	pq, py, pdy, pd, pl := e.ptr(qkv), e.ptr(y), e.ptr(dy), e.ptr(dqkv), e.ptr(lse)
	e.attnChunks(s, true, func(l attnLayout) {
		Q, K, V, S, dS := l.q(pq), l.k(pq), l.v(pq), l.score(l.scores), l.score(l.grads)
		dQ, dK, dV, dY := l.q(pd), l.k(pd), l.v(pd), l.out(pdy)
		e.batched("attention", false, true, T, T, D, scale, l.w, l.w, 0, T, l.pairs(Q, K, S))
		e.launch("causalProbs", l.n*s.Heads*T, rowThreads, l.scores, pl+uintptr(f32*l.b0*s.Heads*T), T)
		e.batched("attention", false, true, T, T, D, 1, l.hd, l.w, 0, T, l.pairs(dY, V, dS))
		e.launch("softmaxGrad", l.n*s.Heads*T, rowThreads, l.grads, l.scores, dY(0, 0), l.out(py)(0, 0), T, s.Heads, D)
		e.batched("attention", false, false, T, D, T, scale, T, l.w, 0, l.w, l.pairs(dS, K, dQ))
		for r := 0; r < l.rep; r++ {
			var dk, dv batch
			for b := 0; b < l.n; b++ {
				for g := 0; g < s.KVHeads; g++ {
					h := g*l.rep + r
					dk.add(dS(b, h), Q(b, h), dK(b, h))
					dv.add(S(b, h), dY(b, h), dV(b, h))
				}
			}
			beta := float32(min(r, 1))
			e.batched("attention", true, false, T, D, T, scale, T, l.w, beta, l.w, dk)
			e.batched("attention", true, false, T, D, T, 1, T, l.hd, beta, l.w, dv)
		}
	})
}
