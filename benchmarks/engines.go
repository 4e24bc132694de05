package benchmarks

import (
	"fmt"
	"io"
	"os"
	"time"

	"gochat/backend"
	"gochat/internal/atomicfile"
	"gochat/internal/measure"
	"gochat/optimizers"
	"gochat/train"
)

// Shape is a product C (M×N) = A (M×K)·Bᵀ (B is N×K), as the model's linear layers do.
type Shape struct {
	Name    string
	M, N, K int
}

// NanochatShapes are the products of a d12 training step at T=2048, B=1 (and lm_head's
// chunk of 128 rows over a 65,536 vocabulary).
var NanochatShapes = []Shape{
	{"qkv", 2048, 2304, 768},
	{"attn.c_proj", 2048, 768, 768},
	{"mlp.c_fc", 2048, 3072, 768},
	{"mlp.c_proj", 2048, 768, 3072},
	{"lm_head chunk", 128, 65536, 768},
	{"c_fc gradient", 3072, 768, 2048},
}

// EngineResult is one engine's figures.
type EngineResult struct {
	Engine string      // the name it was chosen by
	BLAS   string      // what it is
	Shapes []float64   // GFLOP/s at NanochatShapes
	Sizes  []int       // square sizes n (n×n×n)
	Square []float64   // GFLOP/s at each size
	NS     []float64   // Newton-Schulz (5 steps) seconds at 768×768 and 768×3072
	Steps  []ModelStep // training steps per model
}

// ModelStep is a training step's speed for one model.
type ModelStep struct {
	Spec      ModelSpec
	TokPerSec float64
}

// RunEngine measures an engine: products at nanochat's shapes and at square sizes, and
// Newton-Schulz, all on the engine's own memory, then training steps of the given models.
func RunEngine(name string, e backend.Backend, sizes []int, models []ModelSpec, steps int) (EngineResult, error) {
	res := EngineResult{Engine: name, BLAS: e.Name(), Sizes: sizes}
	for _, s := range NanochatShapes {
		res.Shapes = append(res.Shapes, measure.GemmGFLOPs(e, true, s.M, s.N, s.K, 300*time.Millisecond))
	}
	for _, n := range sizes {
		res.Square = append(res.Square, measure.GemmGFLOPs(e, true, n, n, n, 300*time.Millisecond))
	}
	for _, rc := range [][2]int{{768, 768}, {768, 3072}} {
		g, out := measure.Floats(e, rc[0]*rc[1]), measure.Floats(e, rc[0]*rc[1])
		for i := range g {
			g[i] = float32(i%13) - 6
		}
		optimizers.NewtonSchulz(e, out, g, rc[0], rc[1], 5)
		measure.Wait(e)
		start := time.Now()
		const reps = 5
		for range reps {
			optimizers.NewtonSchulz(e, out, g, rc[0], rc[1], 5)
		}
		measure.Wait(e)
		res.NS = append(res.NS, time.Since(start).Seconds()/reps)
	}
	for _, spec := range models {
		r, err := RunModel(spec, Options{Steps: steps, Engine: e})
		if err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, ModelStep{Spec: spec, TokPerSec: r.TokensPerSec})
	}
	return res, nil
}

// Crossover is the smallest square size from which other is faster than base, or 0.
func Crossover(base, other EngineResult) int {
	for i, n := range base.Sizes {
		if i < len(other.Square) && other.Square[i] > base.Square[i] {
			return n
		}
	}
	return 0
}

// WriteEngineTables writes the engines' figures as Markdown tables.
func WriteEngineTables(w io.Writer, results []EngineResult) {
	fmt.Fprint(w, "| product (M×N×K) |")
	for _, r := range results {
		fmt.Fprintf(w, " %s |", r.Engine)
	}
	fmt.Fprint(w, "\n| --- |")
	for range results {
		fmt.Fprint(w, " --- |")
	}
	fmt.Fprintln(w)
	for i, s := range NanochatShapes {
		fmt.Fprintf(w, "| %s %d×%d×%d |", s.Name, s.M, s.N, s.K)
		for _, r := range results {
			fmt.Fprintf(w, " %.0f GFLOP/s |", r.Shapes[i])
		}
		fmt.Fprintln(w)
	}
	for i, n := range results[0].Sizes {
		fmt.Fprintf(w, "| square %d |", n)
		for _, r := range results {
			fmt.Fprintf(w, " %.0f GFLOP/s |", r.Square[i])
		}
		fmt.Fprintln(w)
	}
	for i, name := range []string{"Newton-Schulz 768×768", "Newton-Schulz 768×3072"} {
		fmt.Fprintf(w, "| %s |", name)
		for _, r := range results {
			fmt.Fprintf(w, " %.1f ms |", 1000*r.NS[i])
		}
		fmt.Fprintln(w)
	}
	for i, st := range results[0].Steps {
		fmt.Fprintf(w, "| training %s |", st.Spec)
		for _, r := range results {
			fmt.Fprintf(w, " %.0f tok/s |", r.Steps[i].TokPerSec)
		}
		fmt.Fprintln(w)
	}
	for _, r := range results[1:] {
		if n := Crossover(results[0], r); n > 0 {
			fmt.Fprintf(w, "\n%s is faster than %s from square products of %d on.\n", r.Engine, results[0].Engine, n)
		} else {
			fmt.Fprintf(w, "\n%s is not faster than %s at any size measured.\n", r.Engine, results[0].Engine)
		}
	}
}

// PlotEngines draws GFLOP/s against the square size, one line per engine, as a PNG.
func PlotEngines(path string, results []EngineResult) error {
	var series []train.Series
	for _, r := range results {
		s := train.Series{Name: r.Engine}
		for j, n := range r.Sizes {
			s.X, s.Y = append(s.X, float64(n)), append(s.Y, r.Square[j])
		}
		series = append(series, s)
	}
	png, err := train.Chart{Title: "matrix product rate by engine", XLabel: "n (n×n×n product)", YLabel: "GFLOP/s", LogX: true, LogY: true}.PNG(series...)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(f *os.File) error {
		_, err := f.Write(png)
		return err
	})
}
