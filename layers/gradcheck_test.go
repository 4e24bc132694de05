package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gradCheckTol bounds ‖analytic − numeric‖ / ‖numeric‖ per input, in float64 with central
// differences of step 1e-6 (their own error is around 1e-9 for these smooth functions).
const gradCheckTol = 1e-6

// gradCase is one numeric gradient check: build applies the op under test to input nodes
// made from inputs; wrt lists the inputs to differentiate.
type gradCase struct {
	name   string
	inputs []tensor.Tensor
	wrt    []int
	build  func(in []*G.Node) (*G.Node, error)
}

// randTensor returns a float64 tensor of the given shape with entries uniform in [-1, 1).
func randTensor(r *rand.Rand, shape ...int) *tensor.Dense {
	n := tensor.Shape(shape).TotalSize()
	data := make([]float64, n)
	for i := range data {
		data[i] = 2*r.Float64() - 1
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// intTensor returns a vector of Go ints.
func intTensor(v []int) *tensor.Dense {
	return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(v))
}

// checkGradients compares G.Grad's gradient of loss = Σ out ⊙ R (R random, fixed) with
// central differences of the same loss.
func checkGradients(t *testing.T, c gradCase) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, uint64(len(c.name))))
	g := G.NewGraph()
	nodes := make([]*G.Node, len(c.inputs))
	for i, v := range c.inputs {
		nodes[i] = G.NewTensor(g, v.Dtype(), v.Dims(), G.WithShape(v.Shape()...), G.WithValue(v), G.WithName(string(rune('a'+i))))
	}
	out, err := c.build(nodes)
	if err != nil {
		t.Fatalf("%s: build: %v", c.name, err)
	}
	var loss *G.Node
	if out.Shape().IsScalar() {
		loss = G.Must(G.Mul(out, G.NewConstant(0.37)))
	} else {
		proj := G.NodeFromAny(g, randTensor(r, out.Shape()...), G.WithName("projection"))
		loss = G.Must(G.Sum(G.Must(G.HadamardProd(out, proj))))
	}
	wrt := make(G.Nodes, len(c.wrt))
	for i, k := range c.wrt {
		wrt[i] = nodes[k]
	}
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatalf("%s: Grad: %v", c.name, err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	eval := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatalf("%s: run: %v", c.name, err)
		}
		return loss.Value().Data().(float64)
	}
	eval()
	analytic := make([][]float64, len(wrt))
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: input %d has no gradient: %v", c.name, c.wrt[i], err)
		}
		analytic[i] = append([]float64(nil), gv.Data().([]float64)...)
	}
	for i, k := range c.wrt {
		x := c.inputs[k].Data().([]float64)
		const h = 1e-5
		var diff, norm float64
		for j := range x {
			orig := x[j]
			x[j] = orig + h
			up := eval()
			x[j] = orig - h
			down := eval()
			x[j] = orig
			num := (up - down) / (2 * h)
			diff += (num - analytic[i][j]) * (num - analytic[i][j])
			norm += num * num
		}
		rel := math.Sqrt(diff) / math.Max(math.Sqrt(norm), 1e-12)
		if rel > gradCheckTol || math.IsNaN(rel) {
			t.Errorf("%s: input %d: ‖analytic−numeric‖/‖numeric‖ = %.3g > %g", c.name, k, rel, gradCheckTol)
		}
	}
}
