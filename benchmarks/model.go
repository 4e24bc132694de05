// Package benchmarks measures gochat against the machine it runs on: the model's training
// step (tokens/s, GFLOP/s by nanochat's FLOP estimate, the ratio to the same process's SGEMM
// rate, peak memory) for the configurations the issues track. `gochat bench` and
// `go test -bench` both run it; README.md holds committed results.
package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/layers"
)

// ModelSpec is one benchmark configuration.
type ModelSpec struct {
	Depth, SeqLen, Batch, Vocab int
}

func (s ModelSpec) String() string {
	return fmt.Sprintf("d%d T=%d B=%d V=%d", s.Depth, s.SeqLen, s.Batch, s.Vocab)
}

// StandardModels are the configurations of the model issue: the laptop demo sizes and d12 at
// nanochat's full sequence length and vocabulary.
var StandardModels = []ModelSpec{
	{Depth: 4, SeqLen: 256, Batch: 8, Vocab: 8192},
	{Depth: 6, SeqLen: 512, Batch: 8, Vocab: 8192},
	{Depth: 12, SeqLen: 2048, Batch: 1, Vocab: 65536},
}

// ModelResult is what one configuration measured.
type ModelResult struct {
	Spec          ModelSpec
	BLAS          string
	Steps         int
	StepSeconds   float64 // median over the timed steps
	TokensPerSec  float64
	ModelGFLOPs   float64 // nanochat's estimate_flops × tokens / step time
	SgemmGFLOPs   float64 // this process's SGEMM at 1024×768×3072
	Ratio         float64 // ModelGFLOPs / SgemmGFLOPs
	PeakRSS       uint64  // bytes, whole process
	HeapGrowth    int64   // live heap after the last step minus after the first timed step
	AllocsPerStep float64
}

// RunModel builds the model for spec with nanochat's initialisation, runs one warm-up step
// and then steps timed forward+backward steps on random tokens, reporting each through
// progress (may be nil).
func RunModel(spec ModelSpec, steps int, blas cpubackend.BLAS, progress func(step int, seconds, loss float64)) (ModelResult, error) {
	cfg := graph.ConfigForDepth(spec.Depth, spec.Vocab, spec.SeqLen)
	res := ModelResult{Spec: spec, BLAS: blas.Name(), Steps: steps}
	m, err := graph.Build(cfg, graph.Options{Batch: spec.Batch, SeqLen: spec.SeqLen, Mode: graph.Train,
		Reduction: layers.Mean, Engine: cpubackend.New(blas)})
	if err != nil {
		return res, err
	}
	defer m.Close()
	if err := m.Load(graph.InitWeights(cfg, 1)); err != nil {
		return res, err
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := spec.Batch * spec.SeqLen
	ids, targets := make([]int, n), make([]int, n)
	for i := range ids {
		ids[i], targets[i] = r.IntN(spec.Vocab), r.IntN(spec.Vocab)
	}
	step := func() (float64, error) {
		start := time.Now()
		if err := m.Run(ids, targets); err != nil {
			return 0, err
		}
		if err := m.ZeroGrads(); err != nil {
			return 0, err
		}
		return time.Since(start).Seconds(), nil
	}
	if _, err := step(); err != nil { // warm-up: first-touch allocations
		return res, err
	}
	var ms runtime.MemStats
	times := make([]float64, steps)
	var heap0 uint64
	var mallocs0 uint64
	for i := range times {
		if times[i], err = step(); err != nil {
			return res, err
		}
		if i == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heap0, mallocs0 = ms.HeapAlloc, ms.Mallocs
		}
		if progress != nil {
			progress(i+1, times[i], m.Loss())
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapGrowth = int64(ms.HeapAlloc) - int64(heap0)
	if steps > 1 {
		res.AllocsPerStep = float64(ms.Mallocs-mallocs0) / float64(steps-1)
	}
	res.StepSeconds = median(times)
	res.TokensPerSec = float64(n) / res.StepSeconds
	res.ModelGFLOPs = cfg.FLOPsPerToken() * float64(n) / res.StepSeconds / 1e9
	res.SgemmGFLOPs = SgemmGFLOPs(blas, 1024, 768, 3072, time.Second)
	res.Ratio = res.ModelGFLOPs / res.SgemmGFLOPs
	res.PeakRSS = PeakRSS()
	return res, nil
}

// SgemmGFLOPs measures C = A·B for A m×k, B k×n: the best of repeated calls over at least
// the given duration, after one warm-up call.
func SgemmGFLOPs(blas cpubackend.BLAS, m, n, k int, duration time.Duration) float64 {
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for i := range a {
		a[i] = float32(i%7) - 3
	}
	for i := range b {
		b[i] = float32(i%5) - 2
	}
	blas.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
	best := 0.0
	for start := time.Now(); time.Since(start) < duration; {
		t := time.Now()
		blas.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
		best = max(best, 2*float64(m)*float64(n)*float64(k)/time.Since(t).Seconds()/1e9)
	}
	return best
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
