// Package benchmarks measures gochat against the machine it runs on: the model's training
// step (tokens/s, GFLOP/s by nanochat's FLOP estimate, the ratio to the same process's SGEMM
// rate, peak memory) for the configurations the issues track. `gochat bench` and
// `go test -bench` both run it; README.md holds committed results.
package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"gochat/backend"
	"gochat/graph"
	"gochat/internal/measure"
	"gochat/layers"
	"gochat/train"
)

// ModelSpec is one benchmark configuration.
type ModelSpec struct {
	Depth, SeqLen, Batch, Vocab int
	Recompute                   graph.Recompute `json:",omitempty"`
}

// String labels the configuration in the reports: "d4 T=256 B=8 V=8192", with
// " recompute blocks" when it recomputes.
func (s ModelSpec) String() string {
	r := ""
	if s.Recompute != graph.RecomputeNone {
		r = " recompute " + s.Recompute.String()
	}
	return fmt.Sprintf("d%d T=%d B=%d V=%d%s", s.Depth, s.SeqLen, s.Batch, s.Vocab, r)
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
	Spec             ModelSpec
	BLAS             string
	Threads          int // GOMAXPROCS
	Steps            int
	FwdBwdSeconds    float64 // forward + backward, median over the timed steps
	OptimizerSeconds float64 // clipping, AdamW, Muon and zeroing, median
	StepSeconds      float64 // the whole training step, median
	TokensPerSec     float64 // of the whole step
	ModelGFLOPs      float64 // nanochat's estimate_flops × tokens / forward+backward time
	SgemmGFLOPs      float64 // this process's SGEMM at 1024×768×3072
	Ratio            float64 // ModelGFLOPs / SgemmGFLOPs
	PeakRSS          uint64  // bytes, whole process
	DeviceBytes      uint64  // memory an accelerator engine took for its tensors (0 on the CPU)
	HeapGrowth       int64   // live heap after the last step minus after the first timed step
	AllocsPerStep    float64
	Breakdown        []Share         `json:",omitempty"` // CPU time by kind of work, when profiled
	Device           []DeviceShare   `json:",omitempty"` // device time per step by kind of work, when profiled on a device
	Planned          train.Footprint // the step's memory plan
}

// Options of RunModel.
type Options struct {
	Steps  int
	Engine backend.Backend
	// ForwardBackward times forward and backward alone: no optimizer and no optimizer state.
	ForwardBackward bool
	Profile         bool                                  // CPU-profile the timed steps into Breakdown (and time the device's work into Device)
	Write           io.Writer                             // when Profile, also receives the raw profile
	Progress        func(step int, seconds, loss float64) // may be nil
}

// RunModel builds the model for spec with nanochat's initialisation and times full
// training steps (forward, backward, clipping, AdamW and Muon, with nanochat's default
// settings, or forward and backward alone) on random tokens, after one warm-up step.
func RunModel(spec ModelSpec, opt Options) (ModelResult, error) {
	cfg := graph.ConfigForDepth(spec.Depth, spec.Vocab, spec.SeqLen)
	res := ModelResult{Spec: spec, Threads: runtime.GOMAXPROCS(0), Steps: opt.Steps}
	engine := opt.Engine
	res.BLAS = engine.Name()
	gopt := graph.Options{Batch: spec.Batch, SeqLen: spec.SeqLen, Mode: graph.Train,
		Reduction: layers.Mean, Engine: engine, Recompute: spec.Recompute}
	var err error
	if res.Planned, err = train.PlanStep(cfg, gopt, 1); err != nil {
		return res, err
	}
	m, err := graph.Build(cfg, gopt)
	if err != nil {
		return res, err
	}
	if err := m.Load(graph.InitWeights(cfg, 1)); err != nil {
		return res, err
	}
	tr, err := train.NewTrainer(m, train.DefaultRecipe(1<<30), engine)
	if err != nil {
		return res, err
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := spec.Batch * spec.SeqLen
	batch := train.Batch{IDs: make([]int, n), Targets: make([]int, n)}
	for i := range batch.IDs {
		batch.IDs[i], batch.Targets[i] = r.IntN(spec.Vocab), r.IntN(spec.Vocab)
	}
	step := func() (fwdBwd, optim, loss float64, err error) {
		start := time.Now()
		if loss, err = tr.Accumulate([]train.Batch{batch}); err != nil {
			return
		}
		mid := time.Now()
		if !opt.ForwardBackward {
			pprof.Do(context.Background(), pprof.Labels("phase", optimizerPhase), func(context.Context) {
				_, err = tr.Update(1)
			})
		}
		return mid.Sub(start).Seconds(), time.Since(mid).Seconds(), loss, err
	}
	if _, _, _, err := step(); err != nil { // warm-up: first-touch allocations
		return res, err
	}
	var profile bytes.Buffer
	profiler, onDevice := engine.(backend.Profiler)
	if opt.Profile {
		if err := pprof.StartCPUProfile(&profile); err != nil {
			return res, err
		}
		if onDevice {
			profiler.StartProfile()
		}
	}
	var ms runtime.MemStats
	fb, op, total := make([]float64, opt.Steps), make([]float64, opt.Steps), make([]float64, opt.Steps)
	var heap0, mallocs0 uint64
	for i := range total {
		var loss float64
		if fb[i], op[i], loss, err = step(); err != nil {
			return res, err
		}
		total[i] = fb[i] + op[i]
		if i == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heap0, mallocs0 = ms.HeapAlloc, ms.Mallocs
		}
		if opt.Progress != nil {
			opt.Progress(i+1, total[i], loss)
		}
	}
	if opt.Profile && onDevice {
		times, err := profiler.StopProfile()
		if err != nil {
			return res, err
		}
		res.Device = deviceShares(times, opt.Steps)
	}
	if opt.Profile {
		pprof.StopCPUProfile()
		if res.Breakdown, err = Breakdown(profile.Bytes()); err != nil {
			return res, err
		}
		if opt.Write != nil {
			if _, err := opt.Write.Write(profile.Bytes()); err != nil {
				return res, err
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapGrowth = int64(ms.HeapAlloc) - int64(heap0)
	if opt.Steps > 1 {
		res.AllocsPerStep = float64(ms.Mallocs-mallocs0) / float64(opt.Steps-1)
	}
	res.FwdBwdSeconds, res.OptimizerSeconds, res.StepSeconds = median(fb), median(op), median(total)
	res.TokensPerSec = float64(n) / res.StepSeconds
	res.ModelGFLOPs = cfg.FLOPsPerToken() * float64(n) / res.FwdBwdSeconds / 1e9
	res.SgemmGFLOPs = measure.GemmGFLOPs(engine, false, 1024, 768, 3072, time.Second)
	res.Ratio = res.ModelGFLOPs / res.SgemmGFLOPs
	res.PeakRSS = measure.PeakRSS()
	if d, ok := engine.(backend.DeviceMemory); ok {
		res.DeviceBytes = d.DeviceBytes()
	}
	return res, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
