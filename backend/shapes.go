package backend

import (
	"fmt"
	"math"
)

// AttnShape describes one causal self-attention call: Batch rows, Heads query heads sharing
// KVHeads key/value heads (nanochat's repeat_kv: query head h reads kv head h/(Heads/KVHeads)),
// HeadDim elements per head, and Tq queries that are the last Tq of Tk positions. Tq == Tk
// is training and prefill; Tq == 1 is one decoded token; anything between is a chunk after a
// cached prefix. Query i attends to keys 0..Tk−Tq+i.
type AttnShape struct {
	Batch, Heads, KVHeads, HeadDim int
	Tq, Tk                         int
}

// Check says whether s is a shape the kernels take.
func (s AttnShape) Check() error {
	if s.Batch <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.HeadDim <= 0 || s.Tq <= 0 || s.Tk < s.Tq {
		return fmt.Errorf("attention: invalid shape %+v", s)
	}
	if s.Heads%s.KVHeads != 0 {
		return fmt.Errorf("attention: %d kv heads do not divide %d heads", s.KVHeads, s.Heads)
	}
	return nil
}

// RotaryTable holds nanochat's rotary embedding: for position t and frequency index j < D/2,
// angle t·base^(−2j/D). Angles are computed in float64 and rounded once to float32, the
// precision the float32 kernels use.
type RotaryTable struct {
	HeadDim, Len int
	cos64, sin64 []float64
	cos32, sin32 []float32
}

// NewRotaryTable computes cos and sin for positions [0, length).
func NewRotaryTable(length, headDim int, base float64) (*RotaryTable, error) {
	if headDim <= 0 || headDim%2 != 0 || length <= 0 {
		return nil, fmt.Errorf("rotary table: head dim %d must be even and positive, length %d positive", headDim, length)
	}
	half := headDim / 2
	rt := &RotaryTable{HeadDim: headDim, Len: length,
		cos64: make([]float64, length*half), sin64: make([]float64, length*half),
		cos32: make([]float32, length*half), sin32: make([]float32, length*half)}
	for t := 0; t < length; t++ {
		for j := 0; j < half; j++ {
			invFreq := 1 / math.Pow(base, float64(2*j)/float64(headDim))
			s, c := math.Sincos(float64(t) * invFreq)
			i := t*half + j
			rt.cos64[i], rt.sin64[i] = c, s
			rt.cos32[i], rt.sin32[i] = float32(c), float32(s)
		}
	}
	return rt, nil
}

// BFloat16 returns a copy of the table with its values rounded to bfloat16, as nanochat
// casts its tables (its forward asserts bfloat16 cos and sin): evaluating a model as
// nanochat evaluates it takes them.
func (rt *RotaryTable) BFloat16() *RotaryTable {
	out := &RotaryTable{HeadDim: rt.HeadDim, Len: rt.Len}
	for _, t := range []struct {
		src []float32
		dst *[]float32
		d64 *[]float64
	}{{rt.cos32, &out.cos32, &out.cos64}, {rt.sin32, &out.sin32, &out.sin64}} {
		*t.dst, *t.d64 = make([]float32, len(t.src)), make([]float64, len(t.src))
		for i, v := range t.src {
			(*t.dst)[i] = RoundBF16(v)
			(*t.d64)[i] = float64((*t.dst)[i])
		}
	}
	return out
}

// RoundBF16 rounds x to the nearest bfloat16 (ties to even), as PyTorch's cast does.
func RoundBF16(x float32) float32 {
	b := math.Float32bits(x)
	if x != x { // NaN stays NaN
		return x
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// Float32 returns the cos and sin tables, position-major with HeadDim/2 values per
// position, as the float32 kernels use them (do not change them).
func (rt *RotaryTable) Float32() (cos, sin []float32) { return rt.cos32, rt.sin32 }

// Float64 returns the tables in float64, as the float64 kernels of the gradient checks use
// them.
func (rt *RotaryTable) Float64() (cos, sin []float64) { return rt.cos64, rt.sin64 }

// Rotation says where a rotary op applies: rows of x are sequences of seqLen positions
// starting at pos0 (rows are ordered batch-major), and the first heads chunks of
// table.HeadDim elements of each row are rotated.
type Rotation struct {
	Table       *RotaryTable
	SeqLen      int
	Pos0, Heads int
}

// Check says whether r fits rows of width elements and its table.
func (r Rotation) Check(width int) error {
	if r.SeqLen <= 0 || r.Pos0 < 0 || r.Pos0+r.SeqLen > r.Table.Len {
		return fmt.Errorf("rotary: positions %d..%d are beyond the table of %d", r.Pos0, r.Pos0+r.SeqLen, r.Table.Len)
	}
	if r.Heads <= 0 || r.Heads*r.Table.HeadDim > width {
		return fmt.Errorf("rotary: %d heads of %d do not fit rows of %d", r.Heads, r.Table.HeadDim, width)
	}
	return nil
}
