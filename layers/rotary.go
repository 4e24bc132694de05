package layers

import (
	"fmt"

	"gochat/backend"
	"gochat/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// rotaryTables returns the cos and sin tables in T's precision.
func rotaryTables[T Float](rt *backend.RotaryTable) (cos, sin []T) {
	var z T
	if _, ok := any(z).(float32); ok {
		c, s := rt.Float32()
		return any(c).([]T), any(s).([]T)
	}
	c, s := rt.Float64()
	return any(c).([]T), any(s).([]T)
}

// Rotary applies nanochat's rotary embedding to x (N, W), N a multiple of r.SeqLen. It is
// the half-split rotation by −θ: y1 = x1·cos + x2·sin, y2 = −x1·sin + x2·cos.
func Rotary(x *G.Node, r backend.Rotation) (*G.Node, error) { return applyRotary(x, r, false) }

func applyRotary(x *G.Node, r backend.Rotation, inverse bool) (*G.Node, error) {
	if x.Dims() != 2 || x.Shape()[0]%r.SeqLen != 0 {
		return nil, fmt.Errorf("rotary: rows of %v are not sequences of %d", x.Shape(), r.SeqLen)
	}
	if err := r.Check(x.Shape()[1]); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("Rotary{T%d pos%d h%d×%d inv%t}", r.SeqLen, r.Pos0, r.Heads, r.Table.HeadDim, inverse)
	return G.ApplyOp(&rotaryOp{opInfo: opInfo{name: name, arity: 1}, Rotation: r, inverse: inverse}, x)
}

// RotaryForward writes x rotated into y; inverse rotates by +θ instead, which is the
// gradient of the forward rotation.
func RotaryForward[T Float](y, x []T, width int, r backend.Rotation, inverse bool) {
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
	backend.Rotation
	inverse bool
	out     Buffer
}

func (op *rotaryOp) Type() hm.Type { a := hm.TypeVariable('a'); return hm.NewFnType(a, a) }

func (op *rotaryOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

// Plan: a rotation may rotate its input in place, forward or backward.
func (op *rotaryOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan { return single(&op.out, in[0], 0) }

func (op *rotaryOp) Do(in ...G.Value) (G.Value, error) {
	x, err := dense("rotary input", in[0])
	if err != nil {
		return nil, err
	}
	w := x.Shape()[1]
	y := op.out.get(x.Dtype(), x.Engine(), x.Shape()...)
	switch x.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](x).RotaryForward(floats[float32](y), floats[float32](x), w, op.Rotation, op.inverse)
	case tensor.Float64:
		kernelsOf[float64](x).RotaryForward(floats[float64](y), floats[float64](x), w, op.Rotation, op.inverse)
	}
	return y, nil
}

// SymDiff: a rotation's gradient is the opposite rotation of the incoming gradient.
func (op *rotaryOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := applyRotary(grad, op.Rotation, !op.inverse)
	return G.Nodes{dx}, err
}
