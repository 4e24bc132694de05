package layers

import (
	"fmt"
	"math"

	"gochat/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

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

// Float32 returns the cos and sin tables, position-major with HeadDim/2 values per
// position, as the float32 kernels use them (do not change them).
func (rt *RotaryTable) Float32() (cos, sin []float32) { return rt.cos32, rt.sin32 }

// tables returns the cos and sin tables in T's precision.
func rotaryTables[T Float](rt *RotaryTable) (cos, sin []T) {
	var z T
	if _, ok := any(z).(float32); ok {
		return any(rt.cos32).([]T), any(rt.sin32).([]T)
	}
	return any(rt.cos64).([]T), any(rt.sin64).([]T)
}

// Rotation says where a rotary op applies: rows of x are sequences of seqLen positions
// starting at pos0 (rows are ordered batch-major), and the first heads chunks of
// table.HeadDim elements of each row are rotated.
type Rotation struct {
	Table       *RotaryTable
	SeqLen      int
	Pos0, Heads int
}

func (r Rotation) check(width int) error {
	if r.SeqLen <= 0 || r.Pos0 < 0 || r.Pos0+r.SeqLen > r.Table.Len {
		return fmt.Errorf("rotary: positions %d..%d are beyond the table of %d", r.Pos0, r.Pos0+r.SeqLen, r.Table.Len)
	}
	if r.Heads <= 0 || r.Heads*r.Table.HeadDim > width {
		return fmt.Errorf("rotary: %d heads of %d do not fit rows of %d", r.Heads, r.Table.HeadDim, width)
	}
	return nil
}

// Rotary applies nanochat's rotary embedding to x (N, W), N a multiple of r.SeqLen. It is
// the half-split rotation by −θ: y1 = x1·cos + x2·sin, y2 = −x1·sin + x2·cos.
func Rotary(x *G.Node, r Rotation) (*G.Node, error) { return applyRotary(x, r, false) }

func applyRotary(x *G.Node, r Rotation, inverse bool) (*G.Node, error) {
	if x.Dims() != 2 || x.Shape()[0]%r.SeqLen != 0 {
		return nil, fmt.Errorf("rotary: rows of %v are not sequences of %d", x.Shape(), r.SeqLen)
	}
	if err := r.check(x.Shape()[1]); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("Rotary{T%d pos%d h%d×%d inv%t}", r.SeqLen, r.Pos0, r.Heads, r.Table.HeadDim, inverse)
	return G.ApplyOp(&rotaryOp{opInfo: opInfo{name: name, arity: 1, inPlace: 1}, Rotation: r, inverse: inverse}, x)
}

// RotaryForward writes x rotated into y; inverse rotates by +θ instead, which is the
// gradient of the forward rotation.
func RotaryForward[T Float](y, x []T, width int, r Rotation, inverse bool) {
	cos, sin := rotaryTables[T](r.Table)
	half := r.Table.HeadDim / 2
	var s T = 1
	if inverse {
		s = -1
	}
	parallel.For(len(x)/width, width, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			t := r.Pos0 + row%r.SeqLen
			c, sn := cos[t*half:(t+1)*half], sin[t*half:(t+1)*half]
			in, out := x[row*width:(row+1)*width], y[row*width:(row+1)*width]
			for h := 0; h < r.Heads; h++ {
				x1, x2 := in[h*2*half:h*2*half+half], in[h*2*half+half:(h+1)*2*half]
				y1, y2 := out[h*2*half:h*2*half+half], out[h*2*half+half:(h+1)*2*half]
				for j := range half {
					a, b := x1[j], x2[j]
					y1[j] = a*c[j] + s*b*sn[j]
					y2[j] = b*c[j] - s*a*sn[j]
				}
			}
			copy(out[r.Heads*2*half:], in[r.Heads*2*half:])
		}
	})
}

type rotaryOp struct {
	opInfo
	Rotation
	inverse bool
	out     buffer
}

func (op *rotaryOp) Type() hm.Type { a := hm.TypeVariable('a'); return hm.NewFnType(a, a) }

func (op *rotaryOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op *rotaryOp) Do(in ...G.Value) (G.Value, error) { return op.do(in[0], false) }

// UnsafeDo rotates its input in place: a rotation needs no copy of what it rotates, forward
// or backward.
func (op *rotaryOp) UnsafeDo(in ...G.Value) (G.Value, error) { return op.do(in[0], true) }

func (op *rotaryOp) do(in G.Value, inPlace bool) (G.Value, error) {
	x, err := dense("rotary input", in)
	if err != nil {
		return nil, err
	}
	w := x.Shape()[1]
	y := x
	if !inPlace {
		y = op.out.get(x.Dtype(), x.Engine(), x.Shape()...)
	}
	switch x.Dtype() {
	case tensor.Float32:
		if d := deviceOf(x); d != nil {
			d.RotaryForward(floats[float32](y), floats[float32](x), w, op.Rotation, op.inverse)
			break
		}
		RotaryForward(floats[float32](y), floats[float32](x), w, op.Rotation, op.inverse)
	case tensor.Float64:
		RotaryForward(floats[float64](y), floats[float64](x), w, op.Rotation, op.inverse)
	}
	return y, nil
}

// SymDiff: a rotation's gradient is the opposite rotation of the incoming gradient.
func (op *rotaryOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := applyRotary(grad, op.Rotation, !op.inverse)
	return G.Nodes{dx}, err
}
