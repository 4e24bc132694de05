package graph_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gochat/backend"
	"gochat/cpubackend"
	_ "gochat/cudabackend" // GOCHAT_ENGINE=cuda runs the golden cases on the GPU
	"gochat/graph"
	"gochat/internal/golden"
	"gochat/layers"
	_ "gochat/metalbackend" // GOCHAT_ENGINE=metal on a Mac
	"gochat/optimizers"
	"gochat/safetensors"
	"gochat/train"

	"gorgonia.org/tensor"
)

// tolerance bounds ‖got − want‖ / ‖want‖ against nanochat's float64 reference
// (shared/golden/README.md): value for logits, losses, gradients, gradient norms and
// Newton-Schulz outputs, step for the weights after each optimizer step and update for
// what each step changed.
type tolerance struct{ value, step, update float64 }

// tolerances are float32's, and the GPU engines' where GOCHAT_ENGINE names one whose
// products round their operands. cuda-tf32 rounds to 10-bit mantissas (relative error
// 2^-11 ≈ 4.9e-4 each); measured on the H100 machine: logits 5.2e-4, gradients 1.2e-3,
// Newton-Schulz 3.4e-3, weights after two steps 1.4e-2 and their updates 0.10 (Adam
// divides by √v: small gradients' rounding comes out at full step size). cuda-bf16 rounds
// to 7-bit mantissas (2^-8 ≈ 3.9e-3, 8× TF32's), with attention and Newton-Schulz in TF32;
// measured on the H200 machine (2026-12-04): logits 4.1e-3, gradients 9.2e-3, Newton-Schulz
// 3.4e-3, weights after two steps 3.8e-2, updates 0.29 (the embedding's, under Adam).
var tolerances = map[string]tolerance{
	"":          {value: 1e-4, step: 1e-3, update: 1e-3},
	"cuda-tf32": {value: 5e-3, step: 5e-2, update: 0.25},
	"cuda-bf16": {value: 2e-2, step: 0.1, update: 0.6},
}

// tol is the tolerance of the engine GOCHAT_ENGINE chooses.
func tol() tolerance {
	if t, ok := tolerances[os.Getenv("GOCHAT_ENGINE")]; ok {
		return t
	}
	return tolerances[""]
}

// goldenCase is one folder of golden files.
type goldenCase struct {
	name, dir string
	meta      struct {
		Config graph.Config `json:"config"`
		B      int          `json:"B"`
		T      int          `json:"T"`
		Loss   float64      `json:"loss"`
		KV     struct {
			PrefillLen int `json:"prefill_len"`
			ChunkLen   int `json:"chunk_len"`
			Row        int `json:"row"`
		} `json:"kv"`
		LossSum   float64 `json:"loss_sum"`
		Optimizer struct {
			UnembeddingLR float64 `json:"unembedding_lr"`
			EmbeddingLR   float64 `json:"embedding_lr"`
			MatrixLR      float64 `json:"matrix_lr"`
			WeightDecay   float64 `json:"weight_decay"`
			GradClip      float64 `json:"grad_clip"`
			Steps         []struct {
				StepIndex     int     `json:"step_index"`
				NumIterations int     `json:"num_iterations"`
				GradNorm      float64 `json:"grad_norm_before_clip"`
				LRMultiplier  float64 `json:"lr_multiplier"`
				MuonMomentum  float64 `json:"muon_momentum"`
			} `json:"steps"`
		} `json:"optimizer"`
	}
	weights graph.Weights
	inputs  map[string]safetensors.Tensor
	outputs map[string]safetensors.Tensor
}

// goldenRoots are testdata/golden and $GOCHAT_GOLDEN_DIR when set.
func goldenRoots() []string {
	roots := []string{"../testdata/golden"}
	if extra := os.Getenv("GOCHAT_GOLDEN_DIR"); extra != "" {
		roots = append(roots, extra)
	}
	return roots
}

// goldenDirs lists the case folders: those of testdata/golden and GOCHAT_GOLDEN_DIR that
// hold a weights.safetensors.
func goldenDirs(t *testing.T) []string {
	dirs, err := golden.Cases("../testdata/golden", "weights.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func loadGolden(t *testing.T, dir string) *goldenCase {
	c := &goldenCase{name: filepath.Base(dir), dir: dir}
	raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c.meta); err != nil {
		t.Fatalf("%s/meta.json: %v", dir, err)
	}
	read := func(file string) map[string]safetensors.Tensor {
		ts, _, err := safetensors.Read(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	c.weights = readWeights(t, filepath.Join(dir, "weights.safetensors"))
	c.inputs, c.outputs = read("inputs.safetensors"), read("outputs.safetensors")
	return c
}

// readWeights reads a safetensors file of parameters as float32.
func readWeights(t *testing.T, path string) graph.Weights {
	w, err := graph.ReadWeights(path)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (c *goldenCase) ints(t *testing.T, name string) []int {
	ts, ok := c.inputs[name]
	if !ok {
		t.Fatalf("%s: inputs.safetensors has no %s", c.dir, name)
	}
	v, err := ts.Ints()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (c *goldenCase) floats(t *testing.T, name string) []float64 {
	ts, ok := c.outputs[name]
	if !ok {
		t.Fatalf("%s: outputs.safetensors has no %s", c.dir, name)
	}
	v, err := ts.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// check prints the required line and fails above the tolerance.
func (c *goldenCase) check(t *testing.T, check string, got []float32, want []float64, tol float64) {
	t.Helper()
	report(t, c.name, check, got, want, tol)
}

// report prints the line for one check and fails above the tolerance.
func report(t *testing.T, name, check string, got []float32, want []float64, tol float64) {
	t.Helper()
	rel := relErr(got, want)
	fmt.Printf("golden %s %s relerr=%.3g tol=%g\n", name, check, rel, tol)
	if !(rel <= tol) {
		t.Errorf("golden %s %s: relative error %.3g > %g", name, check, rel, tol)
	}
}

// relErr is ‖got − want‖ / ‖want‖ (NaN if the lengths differ).
func relErr(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.NaN()
	}
	var d, n float64
	for i, w := range want {
		e := float64(got[i]) - w
		d += e * e
		n += w * w
	}
	return math.Sqrt(d) / math.Sqrt(n)
}

// build compiles a graph for the case and loads its weights.
func (c *goldenCase) build(t *testing.T, opt graph.Options) *graph.Model {
	if opt.Batch == 0 {
		opt.Batch = c.meta.B
	}
	opt.SeqLen = c.meta.T
	m, err := graph.Build(c.meta.Config, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(c.weights); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGolden compares gochat with nanochat's own outputs on every golden case: the inference
// logits, the mean and the summed loss, the gradient of every parameter, and two optimizer
// steps (gradient norms and every parameter after each), each training graph with and
// without recomputation; and Newton-Schulz on its own.
func TestGolden(t *testing.T) {
	checkNewtonSchulz(t)
	for _, dir := range goldenDirs(t) {
		c := loadGolden(t, dir)
		t.Run(c.name, func(t *testing.T) {
			ids, targets := c.ints(t, "idx"), c.ints(t, "targets")

			infer := c.build(t, graph.Options{Mode: graph.Infer})
			if err := infer.Run(ids, nil); err != nil {
				t.Fatal(err)
			}
			c.check(t, "logits", infer.Output(), c.floats(t, "logits"), tol().value)

			for _, rc := range []graph.Recompute{graph.RecomputeNone, graph.RecomputeBlocks} {
				suffix := "" // the checks' names as before recomputation existed
				if rc != graph.RecomputeNone {
					suffix = " recompute " + rc.String()
				}
				for _, r := range []struct {
					red   layers.Reduction
					check string
					want  float64
				}{{layers.Sum, "loss_sum", c.meta.LossSum}, {layers.Mean, "loss", c.meta.Loss}} {
					m := c.build(t, graph.Options{Mode: graph.Train, Reduction: r.red, Recompute: rc})
					if err := m.Run(ids, targets); err != nil {
						t.Fatal(err)
					}
					c.check(t, r.check+suffix, []float32{float32(m.Loss())}, []float64{r.want}, tol().value)
					if r.red != layers.Mean {
						continue
					}
					grads, err := m.Grads()
					if err == nil {
						grads, err = grads.OnHost(m.Engine)
					}
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range c.meta.Config.Params() {
						c.check(t, "grad."+p.Name+suffix, grads[p.Name], c.floats(t, "grad."+p.Name), tol().value)
					}
				}
				c.checkSteps(t, rc)
			}
			c.checkKV(t, ids)
		})
	}
}

// checkKV runs the sampler's KV-cached forward over row kv.row of idx as kv.safetensors
// describes: the prefill, a chunk after it, then one token at a time.
func (c *goldenCase) checkKV(t *testing.T, ids []int) {
	kv, _, err := safetensors.Read(filepath.Join(c.dir, "kv.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.NewCached(c.meta.Config, c.weights, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	row := ids[c.meta.KV.Row*c.meta.T : (c.meta.KV.Row+1)*c.meta.T]
	cache := m.NewKVCache(1, c.meta.KV.PrefillLen)
	P, n := c.meta.KV.PrefillLen, c.meta.KV.ChunkLen
	pieces := []struct {
		name     string
		from, to int
	}{{"prefill", 0, P}, {"chunk", P, P + n}}
	for i := P + n; i < c.meta.T; i++ {
		pieces = append(pieces, struct {
			name     string
			from, to int
		}{fmt.Sprintf("step%d", i), i, i + 1})
	}
	for _, p := range pieces {
		got, err := m.ForwardAll(cache, row[p.from:p.to], p.to-p.from)
		if err != nil {
			t.Fatal(err)
		}
		want, err := kv[p.name].Float64s()
		if err != nil {
			t.Fatalf("kv.safetensors %s: %v", p.name, err)
		}
		c.check(t, "kv."+p.name, got, want, tol().value)
	}
}

// checkSteps does base_train's two optimizer steps the golden README describes: each batch
// split into micro-batches of rows 0,2,... and 1,3,..., clipping, AdamW then Muon.
func (c *goldenCase) checkSteps(t *testing.T, rc graph.Recompute) {
	o := c.meta.Optimizer
	if len(o.Steps) != 2 || c.meta.B%2 != 0 {
		t.Fatalf("%s: want two optimizer steps on an even batch, got %d steps, B=%d", c.dir, len(o.Steps), c.meta.B)
	}
	m := c.build(t, graph.Options{Batch: c.meta.B / 2, Mode: graph.Train, Reduction: layers.Mean, Recompute: rc})
	s := train.Recipe{MatrixLR: o.MatrixLR, EmbeddingLR: o.EmbeddingLR, UnembeddingLR: o.UnembeddingLR,
		WeightDecay: o.WeightDecay, GradClip: o.GradClip,
		Schedule: optimizers.Schedule{NumIterations: o.Steps[0].NumIterations, WarmdownRatio: 0.2}}
	tr, err := train.NewTrainer(m, s, m.Engine)
	if err != nil {
		t.Fatal(err)
	}
	tr.Iter = o.Steps[0].StepIndex
	before := graph.Weights{}
	for name, w := range c.weights {
		before[name] = append([]float32(nil), w...)
	}
	for k, batch := range []string{"", "2"} {
		step := o.Steps[k]
		if tr.Iter != step.StepIndex {
			t.Fatalf("step %d at iteration %d, golden %d", k+1, tr.Iter, step.StepIndex)
		}
		res, err := tr.Step(evenOddRows(c.ints(t, "idx"+batch), c.ints(t, "targets"+batch), c.meta.B, c.meta.T))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.LRMultiplier-step.LRMultiplier) > 1e-12 || math.Abs(res.Momentum-step.MuonMomentum) > 1e-12 {
			t.Errorf("step %d: lr multiplier %v momentum %v, golden %v %v", k+1, res.LRMultiplier, res.Momentum, step.LRMultiplier, step.MuonMomentum)
		}
		name := fmt.Sprintf("step%d", k+1)
		c.check(t, name+".grad_norm", []float32{float32(res.GradNorm)}, []float64{step.GradNorm}, tol().value)
		// Every parameter after the step, and (stricter, since weights dwarf their updates)
		// every update.
		want := readWeights(t, filepath.Join(c.dir, name+".safetensors"))
		got, err := m.HostWeights()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.meta.Config.Params() {
			c.check(t, name+"."+p.Name, got[p.Name], float64s(want[p.Name]), tol().step)
			c.check(t, name+".update."+p.Name, diff(got[p.Name], before[p.Name]), float64s(diff(want[p.Name], before[p.Name])), tol().update)
			before[p.Name] = append([]float32(nil), want[p.Name]...)
		}
	}
}

// evenOddRows splits a batch into the micro-batches of rows 0,2,4,... and 1,3,5,...
func evenOddRows(ids, targets []int, b, t int) []train.Batch {
	var out []train.Batch
	for first := 0; first < 2; first++ {
		var mb train.Batch
		for row := first; row < b; row += 2 {
			mb.IDs = append(mb.IDs, ids[row*t:(row+1)*t]...)
			mb.Targets = append(mb.Targets, targets[row*t:(row+1)*t]...)
		}
		out = append(out, mb)
	}
	return out
}

// diff is a − b.
func diff(a, b []float32) []float32 {
	d := make([]float32, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

func float64s(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// checkNewtonSchulz compares Muon's orthogonalisation with nanochat's on every matrix of
// each root's muon/newton_schulz.safetensors.
func checkNewtonSchulz(t *testing.T) {
	engine, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range goldenRoots() {
		path := filepath.Join(root, "muon", "newton_schulz.safetensors")
		if _, err := os.Stat(path); err != nil && root != goldenRoots()[0] {
			continue // a case folder without Newton-Schulz cases
		}
		ts, _, err := safetensors.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			in, ok := ts[fmt.Sprintf("in%d", i)]
			if !ok {
				if i == 0 {
					t.Fatalf("%s holds no in0", path)
				}
				break
			}
			out, ok := ts[fmt.Sprintf("out%d", i)]
			if !ok || len(in.Shape) != 2 {
				t.Fatalf("%s: in%d has no out%d or is not a matrix", path, i, i)
			}
			g, _ := in.Float32s()
			want, _ := out.Float64s()
			g, got := onEngine(engine, g), onEngine(engine, make([]float32, len(g)))
			optimizers.NewtonSchulz(engine, got, g, in.Shape[0], in.Shape[1], optimizers.NSSteps)
			if d, ok := engine.(backend.Memory); ok {
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			report(t, "muon", fmt.Sprintf("newton_schulz.%d(%dx%d)", i, in.Shape[0], in.Shape[1]), got, want, tol().value)
		}
	}
}

// onEngine returns x, copied into the engine's memory when it is a device's.
func onEngine(e tensor.Engine, x []float32) []float32 {
	d, ok := e.(backend.Memory)
	if !ok {
		return x
	}
	y := d.Make(tensor.Float32, len(x)).([]float32)
	copy(y, x)
	return y
}
