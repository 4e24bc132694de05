//go:build linux || darwin

package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gochat/cpubackend"
	"gochat/dist"
	"gochat/graph"
	"gochat/internal/mpitest"
	"gochat/safetensors"
)

// shardRankEnv names the folder a rank of TestDistributedStepsEqualAccumulation writes to.
const shardRankEnv = "GOCHAT_TRAIN_RANK_DIR"

// shardSteps is the steps both runs take: enough for Muon's momentum and AdamW's moments
// to matter, with the gradient clipped (grad_clip 1) at the first steps.
const shardSteps = 4

// microBatch is row k of a fixed batch of ranks rows: the micro-batch rank k trains on.
func microBatch(k, rows int) Batch {
	b := sequence(rows, 8)
	return Batch{IDs: b.IDs[k*8 : (k+1)*8], Targets: b.Targets[k*8 : (k+1)*8]}
}

func TestOwnershipBalances(t *testing.T) {
	cfg := tinyModel(t, 1, 8).Config
	for _, world := range []int{1, 2, 3, 5} {
		owner := Ownership(cfg, world)
		load := make([]int, world)
		largest := 0
		for _, p := range cfg.Params() {
			r, ok := owner[p.Name]
			if !ok || r < 0 || r >= world {
				t.Fatalf("world %d: %s has owner %d (%v)", world, p.Name, r, ok)
			}
			load[r] += p.Shape[0] * p.Shape[1]
			largest = max(largest, p.Shape[0]*p.Shape[1])
		}
		lo, hi := load[0], load[0]
		for _, l := range load {
			lo, hi = min(lo, l), max(hi, l)
		}
		if hi-lo > largest { // greedy largest-first: no rank more than one parameter ahead
			t.Fatalf("world %d: loads %v differ by more than the largest parameter (%d)", world, load, largest)
		}
	}
}

// TestDistributedStepsEqualAccumulation: two ranks under mpirun, each training on its own
// micro-batch, end with the losses, weights and optimizer state of one process that
// accumulates both micro-batches, and resume from the state rank 0 gathered as that
// process continues. The gradients are summed in the same order either way; the global
// norm's Σg² is summed in another order (per rank, then over the ranks), which changes the
// clipping coefficient in its last bits: 1e-6 is a few float32 roundings of weights of
// order 0.1 (1e-5 for AdamW's moments, of order 1 after the gradient's square).
func TestDistributedStepsEqualAccumulation(t *testing.T) {
	if os.Getenv(shardRankEnv) != "" {
		t.Skip("a rank of this test")
	}
	const world = 2
	single, _ := NewTrainer(tinyModel(t, 1, 8), DefaultRecipe(10), cpubackend.New(nil))
	var losses []float64
	step := func() {
		res, err := single.Step([]Batch{microBatch(0, world), microBatch(1, world)})
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, res.Loss)
	}
	for range shardSteps {
		step()
	}
	want, err := single.State()
	if err != nil {
		t.Fatal(err)
	}
	saved := graph.Weights{}
	for name, w := range single.Model.Weights() {
		saved[name] = slices.Clone(w)
	}
	step()

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := mpitest.Self(t, ctx, world, "TestDistributedRank", shardRankEnv+"="+dir).CombinedOutput(); err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	var got []float64
	raw, err := os.ReadFile(filepath.Join(dir, "losses.json"))
	if err == nil {
		err = json.Unmarshal(raw, &got)
	}
	if err != nil || len(got) != len(losses) {
		t.Fatalf("the ranks' losses: %v (%v), want %d", got, err, len(losses))
	}
	for i := range losses {
		if math.Abs(got[i]-losses[i]) > 1e-6 {
			t.Fatalf("step %d: loss %.7f on the ranks, %.7f in one process", i, got[i], losses[i])
		}
	}
	closeTo(t, "weights", saved, readWeights(t, filepath.Join(dir, "model.safetensors")), 1e-6)
	closeTo(t, "resumed weights", single.Model.Weights(), readWeights(t, filepath.Join(dir, "resumed.safetensors")), 1e-6)
	state, _, err := safetensors.Read(filepath.Join(dir, "optim.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(state) != len(want) {
		t.Fatalf("rank 0 saved %d state tensors, one process has %d", len(state), len(want))
	}
	for name, w := range want {
		g, ok := state[name]
		if !ok || g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) {
			t.Fatalf("rank 0's state has %s as %v %v (%v), one process as %v %v", name, g.DType, g.Shape, ok, w.DType, w.Shape)
		}
		wv, _ := w.Float64s()
		gv, _ := g.Float64s()
		if w.DType == "I64" { // the step counts
			wi, _ := w.Ints()
			gi, _ := g.Ints()
			if !slices.Equal(wi, gi) {
				t.Fatalf("%s: %v on rank 0, %v in one process", name, gi, wi)
			}
			continue
		}
		for i := range wv {
			if math.Abs(wv[i]-gv[i]) > 1e-5 {
				t.Fatalf("%s[%d]: %v on rank 0, %v in one process", name, i, gv[i], wv[i])
			}
		}
	}
}

func readWeights(t *testing.T, path string) graph.Weights {
	t.Helper()
	w, err := graph.ReadWeights(path)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// closeTo fails unless every value of got is within tol of want's.
func closeTo(t *testing.T, what string, want, got graph.Weights, tol float64) {
	t.Helper()
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("%s %s: %d values, want %d", what, name, len(g), len(w))
		}
		for i := range w {
			if math.Abs(float64(w[i]-g[i])) > tol {
				t.Fatalf("%s %s[%d]: %v distributed, %v in one process", what, name, i, g[i], w[i])
			}
		}
	}
}

// TestDistributedRank is one rank of TestDistributedStepsEqualAccumulation: its own
// micro-batch each step; rank 0 saves the losses, the weights and the gathered optimizer
// state; then every rank resumes from those files in a fresh trainer and takes one more
// step, whose weights rank 0 saves too.
func TestDistributedRank(t *testing.T) {
	dir := os.Getenv(shardRankEnv)
	if dir == "" {
		t.Skip("run by TestDistributedStepsEqualAccumulation under mpirun")
	}
	c, err := dist.OpenMPI(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	root := c.Rank() == 0
	tr, _ := NewTrainer(tinyModel(t, 1, 8), DefaultRecipe(10), cpubackend.New(nil))
	if err := tr.Distribute(c); err != nil {
		t.Fatal(err)
	}
	var losses []float64
	step := func() {
		res, err := tr.Step([]Batch{microBatch(c.Rank(), c.Size())})
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, res.Loss)
	}
	for range shardSteps {
		step()
	}
	state, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	if root {
		if err := tr.Model.Config.WriteWeights(filepath.Join(dir, "model.safetensors"), tr.Model.Weights()); err != nil {
			t.Fatal(err)
		}
		if err := safetensors.Write(filepath.Join(dir, "optim.safetensors"), state, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SumHost([]float64{0}); err != nil { // the files are written
		t.Fatal(err)
	}
	tr = restoreRun(t, dir, 1, func(tr *Trainer) error { return tr.Distribute(c) })
	step()
	if root {
		if err := tr.Model.Config.WriteWeights(filepath.Join(dir, "resumed.safetensors"), tr.Model.Weights()); err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(losses)
		if err := os.WriteFile(filepath.Join(dir, "losses.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
