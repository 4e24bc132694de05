package layers

import (
	"fmt"

	"gochat/internal/parallel"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// NormEps is nanochat's RMSNorm epsilon: F.rms_norm with eps=None uses the machine epsilon
// of float32, its training dtype. gochat uses it for float64 too, as the golden files do.
const NormEps = 1.1920929e-07

// RMSNorm normalises each row of x (N, C) to unit root mean square, with no weights.
func RMSNorm(x *G.Node) (*G.Node, error) {
	if x.Dims() != 2 {
		return nil, fmt.Errorf("RMSNorm: want a matrix, got shape %v", x.Shape())
	}
	return HeadRMSNorm(x, x.Shape()[1], 1)
}

// HeadRMSNorm normalises, in every row of x, the first heads chunks of size elements each
// and copies the rest of the row: nanochat's QK norm on a fused q|k|v row.
func HeadRMSNorm(x *G.Node, size, heads int) (*G.Node, error) {
	s := rmsShape{size: size, heads: heads}
	if x.Dims() != 2 || size <= 0 || heads <= 0 || heads*size > x.Shape()[1] {
		return nil, fmt.Errorf("RMSNorm: %d heads of %d do not fit rows of shape %v", heads, size, x.Shape())
	}
	return G.ApplyOp(&rmsNormOp{opInfo: opInfo{name: "RMSNorm" + s.label(), arity: 1}, rmsShape: s}, x)
}

// rmsShape says which parts of a row are normalised.
type rmsShape struct{ size, heads int }

func (s rmsShape) label() string { return fmt.Sprintf("{%d×%d}", s.heads, s.size) }

// RMSNormForward sets y to x with the first heads chunks of size elements of every row of
// width elements normalised, y = x·rstd with rstd = 1/√(mean(x²) + eps), and the rest of
// each row copied; it keeps each chunk's rstd in rstd (heads a row), unless rstd is nil.
// y may be x.
func RMSNormForward[T Float](y, rstd, x []T, width, size, heads int) {
	parallel.For(len(x)/width, width, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, out := x[r*width:(r+1)*width], y[r*width:(r+1)*width]
			for h := 0; h < heads; h++ {
				xs, ys := row[h*size:(h+1)*size], out[h*size:(h+1)*size]
				s := invRMS(xs)
				for i, v := range xs {
					ys[i] = v * s
				}
				if rstd != nil {
					rstd[r*heads+h] = s
				}
			}
			copy(out[heads*size:], row[heads*size:])
		}
	})
}

// RMSNormBackward sets dx to the gradient through RMSNormForward from its output y and the
// rstd it kept: dx = rstd·(dy − y·mean(dy⊙y)) on normalised chunks (the input's
// rstd·dy − x·rstd³·mean(dy⊙x), with x·rstd = y), dx = dy elsewhere. The input is not
// needed, so the backward pass need not keep it. dx may be dy.
func RMSNormBackward[T Float](dx, y, rstd, dy []T, width, size, heads int) {
	parallel.For(len(y)/width, 2*width, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, g, out := y[r*width:(r+1)*width], dy[r*width:(r+1)*width], dx[r*width:(r+1)*width]
			for h := 0; h < heads; h++ {
				ys, gs, ds := row[h*size:(h+1)*size], g[h*size:(h+1)*size], out[h*size:(h+1)*size]
				var dot T
				for i, v := range ys {
					dot += gs[i] * v
				}
				s, c := rstd[r*heads+h], dot/T(size)
				for i, v := range ys {
					ds[i] = s * (gs[i] - c*v)
				}
			}
			copy(out[heads*size:], g[heads*size:])
		}
	})
}

// invRMS is 1/sqrt(mean(x²) + eps).
func invRMS[T Float](x []T) T {
	var ss T
	for _, v := range x {
		ss += v * v
	}
	return 1 / sqrtf(ss/T(len(x))+NormEps)
}

// rmsNormOp keeps the rstd of its last run for its gradient op.
type rmsNormOp struct {
	opInfo
	rmsShape
	out, rstd Buffer
}

func (op *rmsNormOp) Type() hm.Type { a := hm.TypeVariable('a'); return hm.NewFnType(a, a) }

func (op *rmsNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

// Plan: y and the rstd its gradient op reads.
func (op *rmsNormOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	return Plan{Writes: []Write{{Buf: &op.out, Shape: in[0]}, {Buf: &op.rstd, Shape: tensor.Shape{in[0][0] * op.heads}}}, Result: &op.out}
}

func (op *rmsNormOp) Do(in ...G.Value) (G.Value, error) {
	x, err := dense("RMSNorm input", in[0])
	if err != nil {
		return nil, err
	}
	w := x.Shape()[1]
	y := op.out.get(x.Dtype(), x.Engine(), x.Shape()...)
	rstd := op.rstd.get(x.Dtype(), x.Engine(), x.Shape()[0]*op.heads)
	switch x.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](x).RMSNormForward(floats[float32](y), floats[float32](rstd), floats[float32](x), w, op.size, op.heads)
	case tensor.Float64:
		kernelsOf[float64](x).RMSNormForward(floats[float64](y), floats[float64](rstd), floats[float64](x), w, op.size, op.heads)
	}
	return y, nil
}

// SymDiff: the gradient from the output and the kept rstd, not the input.
func (op *rmsNormOp) SymDiff(_ G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&rmsNormGradOp{opInfo: opInfo{name: "RMSNormGrad" + op.rmsShape.label(), arity: 2}, fwd: op}, out, grad)
	return G.Nodes{dx}, err
}

// rmsNormGradOp computes dx from (y, dy) and its forward op's rstd.
type rmsNormGradOp struct {
	opInfo
	fwd *rmsNormOp
	out Buffer
}

func (op *rmsNormGradOp) Type() hm.Type { a := hm.TypeVariable('a'); return hm.NewFnType(a, a, a) }

func (op *rmsNormGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

// Plan: dx may take dy's memory; the forward op's rstd is read.
func (op *rmsNormGradOp) Plan(_ tensor.Engine, in []tensor.Shape) Plan {
	p := single(&op.out, in[0], 1)
	p.Reads = []*Buffer{&op.fwd.rstd}
	return p
}

func (op *rmsNormGradOp) Do(in ...G.Value) (G.Value, error) {
	y, err := dense("RMSNorm output", in[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense("RMSNorm gradient", in[1], y.Shape()...)
	if err != nil {
		return nil, err
	}
	rstd := op.fwd.rstd.t
	if rstd == nil || rstd.Dtype() != y.Dtype() {
		return nil, fmt.Errorf("%v: the forward op has not run", op)
	}
	w, size, heads := y.Shape()[1], op.fwd.size, op.fwd.heads
	dx := op.out.get(y.Dtype(), y.Engine(), y.Shape()...)
	switch y.Dtype() {
	case tensor.Float32:
		kernelsOf[float32](y).RMSNormBackward(floats[float32](dx), floats[float32](y), floats[float32](rstd), floats[float32](dy), w, size, heads)
	case tensor.Float64:
		kernelsOf[float64](y).RMSNormBackward(floats[float64](dx), floats[float64](y), floats[float64](rstd), floats[float64](dy), w, size, heads)
	}
	return dx, nil
}
