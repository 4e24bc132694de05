package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"gochat/backend"
	"gochat/benchmarks"
	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/atomicfile"
	"gochat/internal/measure"
	"gochat/train"

	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure gochat on this machine",
		Subcommands: []*cli.Command{{
			Name:  "model",
			Usage: "training-step throughput (tok/s, GFLOP/s, ratio to SGEMM, peak RSS)",
			Description: "Without --depth, runs the standard configurations (d4 T=256 B=8 V=8192, d6 T=512 B=8\n" +
				"V=8192, d12 T=2048 B=1 V=65536), each in a fresh process so that its peak RSS is its own.",
			Flags: []cli.Flag{depthFlag(4), seqLenFlag(256), batchFlag(8), vocabFlag(8192), recomputeFlag, engineFlag, blasFlag,
				&cli.IntFlag{Name: "steps", Value: 5, Usage: "timed steps after one warm-up step"},
				&cli.BoolFlag{Name: "json", Usage: "print the result as one JSON line"},
				&cli.BoolFlag{Name: "profile", Usage: "also show where the CPU time goes, from a CPU profile of the timed steps"},
				&cli.StringFlag{Name: "cpuprofile", Usage: "write that CPU profile to `FILE` (implies --profile)"},
				&cli.BoolFlag{Name: "forward-backward", Usage: "time forward and backward alone, without the optimizer and its state"},
			},
			Action: runBenchModel,
		}, {
			Name:  "memory",
			Usage: "the largest device batch whose training step fits each memory size, from the memory plan (with a plot), and measured steps beside it",
			Description: "Plans whole training steps (weights, gradients, optimizer state, summed gradients, activations and\n" +
				"the engine's workspace) at 1, 2, 4, ... rows, without and with --recompute blocks, and prints the\n" +
				"largest batch that fits each of --limits (the memory an engine may use: a Mac's GPU gets about three\n" +
				"quarters of its memory, 27 GiB of a 36 GB laptop). --measure N runs one step of each model at the\n" +
				"largest batch up to N rows that fits this engine, each in a fresh process, and puts its peak beside\n" +
				"the plan.",
			Flags: []cli.Flag{
				&cli.IntSliceFlag{Name: "depths", Value: cli.NewIntSlice(12, 20, 26), Usage: "models planned"},
				seqLenFlag(2048), vocabFlag(65536),
				&cli.IntFlag{Name: "total-batch-size", Value: 524288, Usage: "tokens per optimizer step (nanochat's)"},
				&cli.Float64SliceFlag{Name: "limits", Value: cli.NewFloat64Slice(16, 24, 27, 36, 64, 80), Usage: "memory sizes in GiB"},
				&cli.IntFlag{Name: "measure", Usage: "run a step of each model at up to `N` rows and measure its peak (0: none)"},
				&cli.StringFlag{Name: "plot", Value: "memory.png", Usage: "PNG `FILE` of the planned memory"},
				&cli.BoolFlag{Name: "json", Usage: "print the curves as JSON instead of the table"},
				engineFlag, blasFlag,
			},
			Action: runBenchMemory,
		}, {
			Name:  "sgemm",
			Usage: "the CPU BLAS's single-precision matrix product rate, C = A·B for A m×k and B k×n",
			Flags: []cli.Flag{engineFlag, blasFlag,
				&cli.IntFlag{Name: "m", Value: 1024}, &cli.IntFlag{Name: "n", Value: 3072}, &cli.IntFlag{Name: "k", Value: 768},
				&cli.BoolFlag{Name: "compare", Usage: "measure every CPU BLAS this machine has (native, go, gonum) in this process, with ratios to the first"},
			},
			Action: runBenchSgemm,
		}, {
			Name:  "sample",
			Usage: "generation speed: prefill and decode tok/s of the KV-cached forward, and the memory bandwidth decoding uses",
			Description: "Without --depth, runs d4 (V=8192) and d12 (V=65536) with random weights at batch 1 and 8, and at\n" +
				"batch 1 with int8 weights.\n" +
				"Bandwidth used = weight bytes read per decode step × steps/s ÷ this machine's copy bandwidth.",
			Flags: []cli.Flag{engineFlag, blasFlag,
				&cli.IntFlag{Name: "depth", Usage: "one model of this depth instead of the standard ones"},
				vocabFlag(65536),
				&cli.IntFlag{Name: "batch", Value: 1, Usage: "rows generated side by side, with --depth"},
				&cli.IntFlag{Name: "prompt", Value: 512, Usage: "prompt tokens, with --depth"},
				&cli.IntFlag{Name: "steps", Value: 32, Usage: "decode steps timed"},
				&cli.BoolFlag{Name: "int8", Usage: "the matrices in int8, with --depth"},
			},
			Action: runBenchSample,
		}, {
			Name:  "engines",
			Usage: "compare the engines: products at nanochat's shapes and square sizes (with a plot), the crossover, Newton-Schulz, training steps",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "engines", Value: cli.NewStringSlice("cpu", "cuda", "cuda-tf32"), Usage: "engines to compare (those not here are skipped)"},
				&cli.IntSliceFlag{Name: "depths", Value: cli.NewIntSlice(4, 12), Usage: "models whose training step is timed (d4 T=256 B=8 V=8192, d12 T=2048 B=1 V=65536, others T=512 B=4 V=65536)"},
				&cli.IntFlag{Name: "steps", Value: 2, Usage: "timed training steps per model"},
				&cli.StringFlag{Name: "plot", Value: "engines.png", Usage: "PNG `FILE` of the product rates"},
			},
			Action: runBenchEngines,
		}},
	}
}

func runBenchSgemm(c *cli.Context) error {
	if err := positive(c, "m", "n", "k"); err != nil {
		return err
	}
	var blases []cpubackend.BLAS
	if c.Bool("compare") {
		if native, err := cpubackend.LoadNative(); err == nil {
			blases = append(blases, native)
		} else {
			fmt.Printf("no system BLAS: %v\n", err)
		}
		blases = append(blases, cpubackend.GoKernels{}, cpubackend.Gonum{})
	} else {
		blas, err := cpubackend.Select(c.String(blasFlag.Name))
		if err != nil {
			return fmt.Errorf("--blas: %w", err)
		}
		blases = append(blases, blas)
	}
	m, n, k := c.Int("m"), c.Int("n"), c.Int("k")
	var first float64
	for i, blas := range blases {
		rate := measure.GemmGFLOPs(blas, false, m, n, k, 2*time.Second)
		fmt.Printf("sgemm m=%d n=%d k=%d on %s: %.1f GFLOP/s", m, n, k, blas.Name(), rate)
		if i == 0 {
			first = rate
		} else {
			fmt.Printf(" (%.0f%% of %s)", 100*rate/first, blases[0].Name())
		}
		fmt.Println()
	}
	return nil
}

func runBenchModel(c *cli.Context) error {
	if err := positive(c, "steps"); err != nil {
		return err
	}
	if !c.IsSet("depth") {
		return benchStandard(c)
	}
	if err := positive(c, "depth", "max-seq-len", "device-batch-size", "vocab-size"); err != nil {
		return err
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	spec := benchmarks.ModelSpec{Depth: c.Int("depth"), SeqLen: c.Int("max-seq-len"), Batch: c.Int("device-batch-size"), Vocab: c.Int("vocab-size")}
	fit, err := fitModel(graph.ConfigForDepth(spec.Depth, spec.Vocab, spec.SeqLen), spec.Batch, c.String("recompute"), engine)
	if err != nil {
		return err
	}
	spec.Recompute = fit.Recompute
	steps := c.Int("steps")
	fmt.Fprintf(os.Stderr, "%v: %d steps\n", spec, steps)
	opt := benchmarks.Options{Steps: steps, Engine: engine, Profile: c.Bool("profile"), ForwardBackward: c.Bool("forward-backward"),
		Progress: func(step int, seconds, loss float64) {
			fmt.Fprintf(os.Stderr, "  step %d/%d  %.3f s  loss %.4f\n", step, steps, seconds, loss)
		}}
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		opt.Profile, opt.Write = true, f
	}
	res, err := benchmarks.RunModel(spec, opt)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("memory planned: %v (activations %.3f MB a token)\n", res.Planned, float64(res.Planned.Activations)/float64(spec.Batch*spec.SeqLen)/1e6)
	benchmarks.WriteTable(os.Stdout, []benchmarks.ModelResult{res})
	benchmarks.WriteDeviceMemory(os.Stdout, []benchmarks.ModelResult{res})
	benchmarks.WriteBreakdowns(os.Stdout, []benchmarks.ModelResult{res})
	benchmarks.WriteDeviceTimes(os.Stdout, []benchmarks.ModelResult{res})
	return nil
}

// benchStandard runs each standard configuration in a child process.
func benchStandard(c *cli.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []benchmarks.ModelResult
	for _, s := range benchmarks.StandardModels {
		cmd := exec.Command(self, "bench", "model", "--json",
			"--depth", strconv.Itoa(s.Depth), "--max-seq-len", strconv.Itoa(s.SeqLen),
			"--device-batch-size", strconv.Itoa(s.Batch), "--vocab-size", strconv.Itoa(s.Vocab),
			"--steps", strconv.Itoa(c.Int("steps")), "--engine", c.String("engine"), "--blas", c.String("blas"), "--recompute", c.String("recompute"),
			"--profile="+strconv.FormatBool(c.Bool("profile")), "--forward-backward="+strconv.FormatBool(c.Bool("forward-backward")))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("benchmark %v: %w", s, err)
		}
		var r benchmarks.ModelResult
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("benchmark %v: reading its result: %w", s, err)
		}
		results = append(results, r)
	}
	benchmarks.WriteTable(os.Stdout, results)
	benchmarks.WriteDeviceMemory(os.Stdout, results)
	benchmarks.WriteBreakdowns(os.Stdout, results)
	benchmarks.WriteDeviceTimes(os.Stdout, results)
	return nil
}

func runBenchSample(c *cli.Context) error {
	if err := positive(c, "steps", "batch", "prompt", "vocab-size"); err != nil {
		return err
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	specs := benchmarks.StandardSamples
	if d := c.Int("depth"); d > 0 {
		specs = []benchmarks.SampleSpec{{Depth: d, Vocab: c.Int("vocab-size"), Batch: c.Int("batch"), Prompt: c.Int("prompt"), Int8: c.Bool("int8")}}
	}
	bandwidth := benchmarks.MeasureBandwidth()
	var results []benchmarks.SampleResult
	for _, spec := range specs {
		res, err := benchmarks.RunSample(spec, engine, c.Int("steps"), bandwidth)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	benchmarks.WriteSampleTable(os.Stdout, results)
	return nil
}

func runBenchEngines(c *cli.Context) error {
	if err := positive(c, "steps"); err != nil {
		return err
	}
	var models []benchmarks.ModelSpec
	for _, d := range c.IntSlice("depths") {
		spec := benchmarks.ModelSpec{Depth: d, SeqLen: 512, Batch: 4, Vocab: 65536}
		for _, std := range benchmarks.StandardModels {
			if std.Depth == d {
				spec = std
			}
		}
		models = append(models, spec)
	}
	sizes := []int{128, 256, 512, 1024, 2048, 4096}
	var results []benchmarks.EngineResult
	for _, name := range c.StringSlice("engines") {
		engine, err := backend.OpenOn(name, cpubackend.New(cpubackend.Default()))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: skipped (%v)\n", name, err)
			continue
		}
		fmt.Fprintf(os.Stderr, "measuring %s: %s\n", name, engine.Name())
		res, err := benchmarks.RunEngine(name, engine, sizes, models, c.Int("steps"))
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if len(results) == 0 {
		return fmt.Errorf("no engine could be measured")
	}
	for _, r := range results {
		fmt.Printf("- %s: %s\n", r.Engine, r.BLAS)
	}
	fmt.Println()
	benchmarks.WriteEngineTables(os.Stdout, results)
	if err := benchmarks.PlotEngines(c.String("plot"), results); err != nil {
		return err
	}
	fmt.Println("\nplot:", c.String("plot"))
	return nil
}

func runBenchMemory(c *cli.Context) error {
	if err := positive(c, "max-seq-len", "vocab-size", "total-batch-size"); err != nil {
		return err
	}
	if c.Int("measure") < 0 {
		return fmt.Errorf("--measure must not be negative")
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	T, V := c.Int("max-seq-len"), c.Int("vocab-size")
	curves, err := benchmarks.PlanMemory(c.IntSlice("depths"), T, V, c.Int("total-batch-size"), engine)
	if err != nil {
		return err
	}
	if len(curves) == 0 || len(curves[0].Rows) == 0 {
		return fmt.Errorf("--total-batch-size %d holds no row of %d tokens", c.Int("total-batch-size"), T)
	}
	if n := c.Int("measure"); n > 0 {
		if err := measureMemory(c, engine, curves, n); err != nil {
			return err
		}
	}
	if path := c.String("plot"); path != "" {
		png, err := benchmarks.MemoryPlot(curves)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(path, func(f *os.File) error { _, err := f.Write(png); return err }); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "plot:", path)
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(curves)
	}
	benchmarks.WriteMemoryTable(os.Stdout, curves, c.Float64Slice("limits"), engine.Name())
	return nil
}

// measureMemory runs, for each curve, one training step at the largest of its batch sizes up
// to most rows that fits this engine, in a child process (`bench model`), and records its
// peak.
func measureMemory(c *cli.Context, engine backend.Backend, curves []benchmarks.MemoryCurve, most int) error {
	limit, err := train.MemoryLimit(engine)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for i := range curves {
		cv := &curves[i]
		rows := 0
		for j, r := range cv.Rows {
			// bench model takes one micro-batch: no summed gradients.
			if fp := cv.Planned[j]; r <= most && train.Fits(fp.Total()-fp.Accumulation, limit) {
				rows = r
			}
		}
		if rows == 0 {
			fmt.Fprintf(os.Stderr, "d%d, recompute %v: no batch up to %d rows fits this engine; not measured\n", cv.Depth, cv.Recompute, most)
			continue
		}
		fmt.Fprintf(os.Stderr, "measuring d%d at %d rows, recompute %v\n", cv.Depth, rows, cv.Recompute)
		cmd := exec.Command(self, "bench", "model", "--json", "--steps", "1",
			"--depth", strconv.Itoa(cv.Depth), "--max-seq-len", strconv.Itoa(cv.SeqLen), "--vocab-size", strconv.Itoa(c.Int("vocab-size")),
			"--device-batch-size", strconv.Itoa(rows), "--recompute", cv.Recompute.String(),
			"--engine", c.String("engine"), "--blas", c.String("blas"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("measuring d%d at %d rows: %w", cv.Depth, rows, err)
		}
		var r benchmarks.ModelResult
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("measuring d%d at %d rows: reading its result: %w", cv.Depth, rows, err)
		}
		cv.Measured = append(cv.Measured, benchmarks.Measured{Rows: rows, Planned: r.Planned.Total(), PeakRSS: r.PeakRSS, DeviceBytes: r.DeviceBytes})
	}
	return nil
}
