package graph

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"gochat/checkpoint"
	"gochat/layers"
)

// goldenTol bounds ‖got − want‖ / ‖want‖ for logits, losses and gradients: float32 against
// nanochat's float64 reference (shared/golden/README.md).
const goldenTol = 1e-4

// goldenCase is one folder of golden files.
type goldenCase struct {
	name, dir string
	meta      struct {
		Config  Config  `json:"config"`
		B       int     `json:"B"`
		T       int     `json:"T"`
		Loss    float64 `json:"loss"`
		LossSum float64 `json:"loss_sum"`
	}
	weights Weights
	inputs  map[string]checkpoint.Tensor
	outputs map[string]checkpoint.Tensor
}

// goldenDirs lists the case folders: every subfolder of testdata/golden and of
// $GOCHAT_GOLDEN_DIR that holds a weights.safetensors.
func goldenDirs(t *testing.T) []string {
	roots := []string{"../testdata/golden"}
	if extra := os.Getenv("GOCHAT_GOLDEN_DIR"); extra != "" {
		roots = append(roots, extra)
	}
	var dirs []string
	for _, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatalf("golden folder: %v", err)
		}
		for _, e := range entries {
			dir := filepath.Join(root, e.Name())
			if _, err := os.Stat(filepath.Join(dir, "weights.safetensors")); err == nil {
				dirs = append(dirs, dir)
			}
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatal("no golden cases found")
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
	read := func(file string) map[string]checkpoint.Tensor {
		ts, _, err := checkpoint.ReadSafetensors(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	c.weights = Weights{}
	for name, ts := range read("weights.safetensors") {
		if c.weights[name], err = ts.Float32s(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	c.inputs, c.outputs = read("inputs.safetensors"), read("outputs.safetensors")
	return c
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
	rel := relErr(got, want)
	fmt.Printf("golden %s %s relerr=%.3g tol=%g\n", c.name, check, rel, tol)
	if !(rel <= tol) {
		t.Errorf("golden %s %s: relative error %.3g > %g", c.name, check, rel, tol)
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
func (c *goldenCase) build(t *testing.T, opt Options) *Model {
	opt.Batch, opt.SeqLen = c.meta.B, c.meta.T
	m, err := Build(c.meta.Config, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(c.weights); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGolden compares the model with nanochat's own outputs on every golden case: the
// inference logits, the mean and the summed loss, and the gradient of every parameter.
func TestGolden(t *testing.T) {
	for _, dir := range goldenDirs(t) {
		c := loadGolden(t, dir)
		t.Run(c.name, func(t *testing.T) {
			ids, targets := c.ints(t, "idx"), c.ints(t, "targets")

			infer := c.build(t, Options{Mode: Infer})
			defer infer.Close()
			if err := infer.Run(ids, nil); err != nil {
				t.Fatal(err)
			}
			c.check(t, "logits", infer.Output(), c.floats(t, "logits"), goldenTol)

			for _, r := range []struct {
				red   layers.Reduction
				check string
				want  float64
			}{{layers.Sum, "loss_sum", c.meta.LossSum}, {layers.Mean, "loss", c.meta.Loss}} {
				m := c.build(t, Options{Mode: Train, Reduction: r.red})
				defer m.Close()
				if err := m.Run(ids, targets); err != nil {
					t.Fatal(err)
				}
				c.check(t, r.check, []float32{float32(m.Loss())}, []float64{r.want}, goldenTol)
				if r.red != layers.Mean {
					continue
				}
				grads, err := m.Grads()
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range c.meta.Config.Params() {
					c.check(t, "grad."+p.Name, grads[p.Name], c.floats(t, "grad."+p.Name), goldenTol)
				}
			}
		})
	}
}
