package layers

import (
	"fmt"
	"gochat/backend"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestRotaryGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	table, err := backend.NewRotaryTable(64, 6, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ batch, seq, pos0, heads, width int }{
		{1, 1, 0, 1, 6}, {2, 5, 0, 2, 12}, {3, 3, 7, 1, 18}, {1, 1, 63, 3, 18},
	} {
		checkGradients(t, gradCase{
			name:   fmt.Sprintf("rotary B%d T%d pos%d heads%d width%d", c.batch, c.seq, c.pos0, c.heads, c.width),
			inputs: []tensor.Tensor{randTensor(r, c.batch*c.seq, c.width)},
			wrt:    []int{0},
			build: func(in []*G.Node) (*G.Node, error) {
				return Rotary(in[0], backend.Rotation{Table: table, SeqLen: c.seq, Pos0: c.pos0, Heads: c.heads})
			},
		})
	}
}

// TestRotaryValues checks nanochat's convention on one pair: position t, frequency j=0
// (angle t): y1 = x1·cos t + x2·sin t, y2 = −x1·sin t + x2·cos t.
func TestRotaryValues(t *testing.T) {
	table, _ := backend.NewRotaryTable(8, 2, 10000)
	x := []float64{1, 2, 1, 2, 1, 2}
	y := make([]float64, 6)
	RotaryForward(y, x, 2, backend.Rotation{Table: table, SeqLen: 3, Heads: 1}, false)
	for p := 0; p < 3; p++ {
		c, s := math.Cos(float64(p)), math.Sin(float64(p))
		if math.Abs(y[2*p]-(c+2*s)) > 1e-12 || math.Abs(y[2*p+1]-(-s+2*c)) > 1e-12 {
			t.Fatalf("position %d: got %v", p, y[2*p:2*p+2])
		}
	}
}

func TestRotaryRejectsPositionsBeyondTable(t *testing.T) {
	table, _ := backend.NewRotaryTable(16, 4, 10000)
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(20, 4), G.WithName("x"))
	if _, err := Rotary(x, backend.Rotation{Table: table, SeqLen: 20, Heads: 1}); err == nil {
		t.Fatal("20 positions accepted with a table of 16")
	}
	y := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 4), G.WithName("y"))
	if _, err := Rotary(y, backend.Rotation{Table: table, SeqLen: 4, Pos0: 13, Heads: 1}); err == nil {
		t.Fatal("positions 13..17 accepted with a table of 16")
	}
}
