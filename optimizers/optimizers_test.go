package optimizers_test

import (
	"gochat/cpubackend"
	"gochat/optimizers"
	"math"
	"testing"
)

func TestSchedules(t *testing.T) {
	s := optimizers.Schedule{NumIterations: 10, WarmupRatio: 0.2, WarmdownRatio: 0.4, FinalLRFrac: 0.1}
	// warmup 2 steps, flat while it <= 6, then linear from 1 to 0.1 at it = 10.
	for it, want := range []float64{0.5, 1, 1, 1, 1, 1, 1, 0.775, 0.55, 0.325, 0.1} {
		if got := s.LRMultiplier(it); math.Abs(got-want) > 1e-12 {
			t.Errorf("lr multiplier at %d: %v, want %v", it, got, want)
		}
	}
	for it, want := range map[int]float64{0: 0.85, 150: 0.9, 300: 0.95, 1000: 0.95} {
		if got := optimizers.MuonMomentum(it); math.Abs(got-want) > 1e-12 {
			t.Errorf("momentum at %d: %v, want %v", it, got, want)
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	g := [][]float32{{3, 0}, {4}}
	cpu := cpubackend.New(nil)
	if n, err := optimizers.Clip(cpu, g, 10); err != nil || n != 5 || g[0][0] != 3 {
		t.Fatalf("under the limit: norm %v, grads %v", n, g)
	}
	if n, err := optimizers.Clip(cpu, g, 1); err != nil || n != 5 || math.Abs(float64(g[0][0])-0.6) > 1e-6 || math.Abs(float64(g[1][0])-0.8) > 1e-6 {
		t.Fatalf("clipped: norm %v, grads %v", n, g)
	}
}

// TestAdamWFirstStep: after bias correction the first update is lr·g/(|g| + eps).
func TestAdamWFirstStep(t *testing.T) {
	a := optimizers.NewAdamW(0.1, cpubackend.New(nil))
	p := optimizers.Param{Name: "w", Value: []float32{1, -2}, Grad: []float32{0.5, -0.001}}
	if err := a.Step([]optimizers.Param{p}, []float64{0.01}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{1*(1-0.001) - 0.01, -2*(1-0.001) + 0.01} {
		if math.Abs(float64(p.Value[i])-want) > 1e-6 {
			t.Errorf("value %d: %v, want %v", i, p.Value[i], want)
		}
	}
}
