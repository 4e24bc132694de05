package optimizers

import (
	"math"
	"testing"

	"gochat/cpubackend"
)

// deviceEngine stands for an engine with a device: it runs the steps it is handed with
// its own products (the same sequence as the CPU path, on gonum's BLAS) and counts them.
type deviceEngine struct {
	cpubackend.Gonum
	calls int
}

func (d *deviceEngine) NewtonSchulzSteps(x []float32, r, c, steps int, ca, cb, cc float32) bool {
	d.calls++
	a, b, next := make([]float32, r*r), make([]float32, r*r), make([]float32, r*c)
	for range steps {
		d.Sgemm(false, true, r, r, c, 1, x, c, x, c, 0, a, r)
		copy(b, a)
		d.Sgemm(false, false, r, r, r, cc, a, r, a, r, cb, b, r)
		copy(next, x)
		d.Sgemm(false, false, r, c, r, 1, b, r, x, c, ca, next, c)
		x, next = next, x
	}
	if steps%2 == 1 {
		copy(next, x) // the result is in the caller's slice
	}
	return true
}

// TestNewtonSchulzOnADevice: an engine that runs the iteration itself (optimizers.Iterator)
// gets the normalised wide matrix, for tall inputs too, and its result comes back in place
// of the CPU loop's.
func TestNewtonSchulzOnADevice(t *testing.T) {
	for _, shape := range [][2]int{{6, 10}, {10, 6}} {
		rows, cols := shape[0], shape[1]
		g := make([]float32, rows*cols)
		for i := range g {
			g[i] = float32(math.Sin(float64(i)))
		}
		want, got := make([]float32, len(g)), make([]float32, len(g))
		NewtonSchulz(cpubackend.Gonum{}, want, g, rows, cols, NSSteps)
		dev := &deviceEngine{}
		NewtonSchulz(dev, got, g, rows, cols, NSSteps)
		if dev.calls != 1 {
			t.Fatalf("%v: the device was asked %d times", shape, dev.calls)
		}
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5 {
				t.Fatalf("%v: element %d: %v on the device, %v on the CPU", shape, i, got[i], want[i])
			}
		}
	}
}
