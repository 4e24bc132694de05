package layers

import (
	"fmt"
	"math"

	"gochat/backend"
	"gochat/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// View locates a (batch, position, head, dim) array in memory: element (b, t, h, d) is
// Data[b·Batch + t·Row + h·Head + d], Head being HeadDim when it is 0 (heads side by side in
// a row). It lets one kernel read q, k and v out of a fused q|k|v row or out of a KV cache,
// which keeps each head's positions together, without copying.
type View[T Float] struct {
	Data             []T
	Batch, Row, Head int
}

// at returns the slice starting at (b, t, head h) for heads of size d.
func (v View[T]) at(b, t, h, d int) []T {
	head := v.Head
	if head == 0 {
		head = d
	}
	return v.Data[b*v.Batch+t*v.Row+h*head:]
}

// attnBlock is the number of query rows scored at once: a block of attnBlock×Tk scores is
// all a worker holds, and a causal block needs only the keys up to its last row.
const attnBlock = 128

// The kernels split the work by (batch row, kv group): the query heads that share a kv head
// are done by one worker, which alone then writes that group's dk and dv. Each worker holds
// two score blocks (probabilities and their gradient); there are at most one worker per
// processor, and never a (B, H, T, T) score tensor.
func attnWorkers(s backend.AttnShape) int { return min(parallel.Workers(), s.Batch*s.KVHeads) }

func attnPerWorker(tk int) int { return 2 * attnBlock * tk }

// AttnScratch is the number of elements of scratch AttentionForward and AttentionBackward
// need for s.
func AttnScratch(s backend.AttnShape) int { return attnWorkers(s) * attnPerWorker(s.Tk) }

// forGroups calls fn for every (batch row, kv group) on the workers scratch allows, each
// with its own part of scratch.
func forGroups[T Float](s backend.AttnShape, scratch []T, fn func(b, g int, scratch []T)) {
	per := attnPerWorker(s.Tk)
	workers := max(1, min(attnWorkers(s), len(scratch)/per))
	parallel.Each(s.Batch*s.KVHeads, workers, func(unit, w int) {
		fn(unit/s.KVHeads, unit%s.KVHeads, scratch[w*per:(w+1)*per])
	})
}

// AttentionForward sets y = softmax(q·kᵀ/√D, causal)·v for every batch row and query head,
// and writes the log-sum-exp of every score row to lse, ordered (b, h, t) with Tq rows.
func AttentionForward[T Float](e backend.Gemm, s backend.AttnShape, q, k, v, y View[T], lse, scratch []T) {
	d, rep := s.HeadDim, s.Heads/s.KVHeads
	scale := T(1 / math.Sqrt(float64(d)))
	forGroups(s, scratch, func(b, g int, scratch []T) {
		for h := g * rep; h < (g+1)*rep; h++ {
			rowLSE := lse[(b*s.Heads+h)*s.Tq:]
			for i0 := 0; i0 < s.Tq; i0 += attnBlock {
				rows, nc := attnBlockSize(s, i0)
				p := scratch[:rows*nc]
				gemm(e, false, true, rows, nc, d, scale, q.at(b, i0, h, d), q.Row, k.at(b, 0, g, d), k.Row, 0, p, nc)
				causalSoftmax(p, rowLSE[i0:i0+rows], s.Tk-s.Tq+i0, nc)
				gemm(e, false, false, rows, d, nc, 1, p, nc, v.at(b, 0, g, d), v.Row, 0, y.at(b, i0, h, d), y.Row)
			}
		}
	})
}

// AttentionBackward overwrites dq, dk and dv with the gradients of AttentionForward, given
// the gradient dy of its output y and the log-sum-exps it saved.
func AttentionBackward[T Float](e backend.Gemm, s backend.AttnShape, q, k, v, y, dy, dq, dk, dv View[T], lse, scratch []T) {
	d, rep := s.HeadDim, s.Heads/s.KVHeads
	scale := T(1 / math.Sqrt(float64(d)))
	forGroups(s, scratch, func(b, g int, scratch []T) {
		for t := 0; t < s.Tk; t++ {
			clear(dk.at(b, t, g, d)[:d])
			clear(dv.at(b, t, g, d)[:d])
		}
		for h := g * rep; h < (g+1)*rep; h++ {
			rowLSE := lse[(b*s.Heads+h)*s.Tq:]
			for i0 := 0; i0 < s.Tq; i0 += attnBlock {
				rows, nc := attnBlockSize(s, i0)
				p, ds := scratch[:rows*nc], scratch[rows*nc:2*rows*nc]
				qi, dyi := q.at(b, i0, h, d), dy.at(b, i0, h, d)
				// Recompute the probabilities from the saved log-sum-exp.
				gemm(e, false, true, rows, nc, d, scale, qi, q.Row, k.at(b, 0, g, d), k.Row, 0, p, nc)
				causalProbs(p, rowLSE[i0:i0+rows], s.Tk-s.Tq+i0, nc)
				// dP = dY·Vᵀ, then dS = P ⊙ (dP − rowsum(dY ⊙ Y)).
				gemm(e, false, true, rows, nc, d, 1, dyi, dy.Row, v.at(b, 0, g, d), v.Row, 0, ds, nc)
				softmaxGrad(ds, p, dyi, dy.Row, y.at(b, i0, h, d), y.Row, d, nc)
				gemm(e, false, false, rows, d, nc, scale, ds, nc, k.at(b, 0, g, d), k.Row, 0, dq.at(b, i0, h, d), dq.Row)
				gemm(e, true, false, nc, d, rows, scale, ds, nc, qi, q.Row, 1, dk.at(b, 0, g, d), dk.Row)
				gemm(e, true, false, nc, d, rows, 1, p, nc, dyi, dy.Row, 1, dv.at(b, 0, g, d), dv.Row)
			}
		}
	})
}

// attnBlockSize gives the rows of the query block starting at i0 and the keys they see.
func attnBlockSize(s backend.AttnShape, i0 int) (rows, keys int) {
	rows = min(attnBlock, s.Tq-i0)
	return rows, s.Tk - s.Tq + i0 + rows
}

// causalSoftmax turns each row of scores (row i sees keys 0..off+i) into probabilities in
// place, zeroing the keys it may not see, and records each row's log-sum-exp.
func causalSoftmax[T Float](p, lse []T, off, nc int) {
	parallel.For(len(lse), 3*nc, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row, n := p[i*nc:(i+1)*nc], off+i+1
			m := row[0]
			for _, x := range row[1:n] {
				m = max(m, x)
			}
			sum := expAffine(row[:n], row[:n], 1, -m)
			inv := 1 / sum
			for j := range row[:n] {
				row[j] *= inv
			}
			clear(row[n:])
			lse[i] = m + logf(sum)
		}
	})
}

// causalProbs recomputes probabilities from scores and saved log-sum-exps.
func causalProbs[T Float](p, lse []T, off, nc int) {
	parallel.For(len(lse), 2*nc, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row, n := p[i*nc:(i+1)*nc], off+i+1
			expAffine(row[:n], row[:n], 1, -lse[i])
			clear(row[n:])
		}
	})
}

// softmaxGrad turns dP into dS = P ⊙ (dP − δ) in place, δ_i = Σ_d dY_i,d·Y_i,d.
func softmaxGrad[T Float](ds, p, dy []T, ldy int, y []T, ldyy, d, nc int) {
	rows := len(ds) / nc
	parallel.For(rows, 2*nc, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			var delta T
			gy, yy := dy[i*ldy:i*ldy+d], y[i*ldyy:i*ldyy+d]
			for j, g := range gy {
				delta += g * yy[j]
			}
			pr, dr := p[i*nc:(i+1)*nc], ds[i*nc:(i+1)*nc]
			for j, pj := range pr {
				dr[j] = pj * (dr[j] - delta)
			}
		}
	})
}

// Attention applies causal self-attention to a fused q|k|v matrix of shape
// (Batch·T, (Heads + 2·KVHeads)·HeadDim), rows ordered batch-major, with rotary and QK norm
// already applied. The result is (Batch·T, Heads·HeadDim).
func Attention(qkv *G.Node, s backend.AttnShape) (*G.Node, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	if s.Tq != s.Tk {
		return nil, fmt.Errorf("attention: the graph op attends a whole sequence (Tq %d != Tk %d)", s.Tq, s.Tk)
	}
	want := tensor.Shape{s.Batch * s.Tq, (s.Heads + 2*s.KVHeads) * s.HeadDim}
	if !qkv.Shape().Eq(want) {
		return nil, fmt.Errorf("attention: want q|k|v of shape %v, got %v", want, qkv.Shape())
	}
	name := fmt.Sprintf("Attention{B%d T%d H%d/%d D%d}", s.Batch, s.Tq, s.Heads, s.KVHeads, s.HeadDim)
	return G.ApplyOp(&attentionOp{opInfo: opInfo{name: name, arity: 1}, shape: s}, qkv)
}

// attentionOp keeps the log-sum-exps of its last forward run for its gradient op.
type attentionOp struct {
	opInfo
	shape    backend.AttnShape
	out, lse Buffer
}

// AttnViews splits a fused q|k|v row layout (the Attention op's input), and the per-head
// layout of its output y, into Views.
func AttnViews[T Float](s backend.AttnShape, qkv []T, y []T) (q, k, v, out View[T]) {
	w := (s.Heads + 2*s.KVHeads) * s.HeadDim
	q = View[T]{Data: qkv, Batch: s.Tq * w, Row: w}
	k, v = q, q
	k.Data = qkv[s.Heads*s.HeadDim:]
	v.Data = qkv[(s.Heads+s.KVHeads)*s.HeadDim:]
	out = View[T]{Data: y, Batch: s.Tq * s.Heads * s.HeadDim, Row: s.Heads * s.HeadDim}
	return q, k, v, out
}

// CacheViews are views of a KV cache's k and v laid out (Batch, KVHeads, capacity,
// HeadDim), each head's positions together, as StoreKV writes them.
func CacheViews[T Float](s backend.AttnShape, capacity int, k, v []T) (kc, vc View[T]) {
	lane := capacity * s.HeadDim
	kc = View[T]{Data: k, Batch: s.KVHeads * lane, Row: s.HeadDim, Head: lane}
	vc = kc
	vc.Data = v
	return kc, vc
}

// StoreKV copies the keys and values of the s.Tq new positions of each row of the fused
// q|k|v rows into a KV cache's k and v (CacheViews' layout), at positions s.Tk−s.Tq on.
func StoreKV[T Float](s backend.AttnShape, capacity int, qkv, k, v []T) {
	H, KV, D := s.Heads, s.KVHeads, s.HeadDim
	W, pos := (H+2*KV)*D, s.Tk-s.Tq
	for b := range s.Batch {
		for t := range s.Tq {
			row := qkv[(b*s.Tq+t)*W:]
			for g := range KV {
				at := ((b*KV+g)*capacity + pos + t) * D
				copy(k[at:at+D], row[(H+g)*D:(H+g+1)*D])
				copy(v[at:at+D], row[(H+KV+g)*D:(H+KV+g+1)*D])
			}
		}
	}
}

func (op *attentionOp) Type() hm.Type { a := hm.TypeVariable('a'); return hm.NewFnType(a, a) }

func (op *attentionOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0], op.shape.Heads * op.shape.HeadDim}, nil
}

// Plan: y and the log-sum-exps its gradient op reads.
func (op *attentionOp) Plan(_ tensor.Engine, _ []tensor.Shape) Plan {
	s := op.shape
	return Plan{Writes: []Write{
		{Buf: &op.out, Shape: tensor.Shape{s.Batch * s.Tq, s.Heads * s.HeadDim}},
		{Buf: &op.lse, Shape: tensor.Shape{s.Batch * s.Heads * s.Tq}},
	}, Result: &op.out}
}

func (op *attentionOp) Do(in ...G.Value) (G.Value, error) {
	s := op.shape
	qkv, err := dense("attention input", in[0], s.Batch*s.Tq, (s.Heads+2*s.KVHeads)*s.HeadDim)
	if err != nil {
		return nil, err
	}
	dt, eng := qkv.Dtype(), qkv.Engine()
	y := op.out.get(dt, eng, s.Batch*s.Tq, s.Heads*s.HeadDim)
	lse := op.lse.get(dt, eng, s.Batch*s.Heads*s.Tq)
	switch dt {
	case tensor.Float32:
		kernelsOf[float32](qkv).AttentionForward(s, floats[float32](qkv), floats[float32](y), floats[float32](lse))
	case tensor.Float64:
		kernelsOf[float64](qkv).AttentionForward(s, floats[float64](qkv), floats[float64](y), floats[float64](lse))
	}
	return y, nil
}

func (op *attentionOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g := &attentionGradOp{opInfo: opInfo{name: "Grad" + op.name, arity: 3}, fwd: op}
	d, err := G.ApplyOp(g, in[0], out, grad)
	return G.Nodes{d}, err
}

// attentionGradOp computes d(q|k|v) from (q|k|v, y, dy) and its forward op's log-sum-exps.
type attentionGradOp struct {
	opInfo
	fwd *attentionOp
	out Buffer
}

func (op *attentionGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a, a)
}

func (op *attentionGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op *attentionGradOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	p := single(&op.out, in[0])
	p.Reads = []*Buffer{&op.fwd.lse}
	return p
}

func (op *attentionGradOp) Do(in ...G.Value) (G.Value, error) {
	s := op.fwd.shape
	qkv, err := dense("attention input", in[0], s.Batch*s.Tq, (s.Heads+2*s.KVHeads)*s.HeadDim)
	if err != nil {
		return nil, err
	}
	y, err := dense("attention output", in[1], s.Batch*s.Tq, s.Heads*s.HeadDim)
	if err != nil {
		return nil, err
	}
	dy, err := dense("attention output gradient", in[2], y.Shape()...)
	if err != nil {
		return nil, err
	}
	lse := op.fwd.lse.t
	if lse == nil || lse.Dtype() != qkv.Dtype() {
		return nil, fmt.Errorf("%v: the forward op has not run", op)
	}
	dt, eng := qkv.Dtype(), qkv.Engine()
	d := op.out.get(dt, eng, qkv.Shape()...)
	switch dt {
	case tensor.Float32:
		kernelsOf[float32](qkv).AttentionBackward(s, floats[float32](qkv), floats[float32](y), floats[float32](dy), floats[float32](d), floats[float32](lse))
	case tensor.Float64:
		kernelsOf[float64](qkv).AttentionBackward(s, floats[float64](qkv), floats[float64](y), floats[float64](dy), floats[float64](d), floats[float64](lse))
	}
	return d, nil
}
