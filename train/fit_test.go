package train

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gochat/checkpoint"
	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/hostdevice"
	"gochat/internal/parallel"
	"gochat/layers"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"1024": 1024, "24GB": 24e9, "16 GiB": 16 << 30, "512mib": 512 << 20,
		"1.5KiB": 1536, "2tb": 2e12, "7B": 7} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1GB", "0", "lots", "1e30TB", "NaN"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) took it", in)
		}
	}
}

// fitConfig is a model small enough to plan in a test: d2, 4 heads of 32, 1,024 tokens.
var fitConfig = graph.Config{SequenceLen: 64, VocabSize: 1024, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 128}

// TestPlanStep checks each part of a step's footprint against a count by hand: AdamW's
// two moments of wte and lm_head, Muon's one of the matrices, a second copy of the gradients
// only with accumulation, and the CPU engine's scratch (attention's score blocks for its
// workers, a Newton-Schulz workspace for each matrix orthogonalised at once).
func TestPlanStep(t *testing.T) {
	e := cpubackend.New(nil)
	c, kv := fitConfig.NEmbd, fitConfig.NKVHead*fitConfig.HeadDim()
	opt := graph.Options{Batch: 3, SeqLen: 64, Reduction: layers.Mean, Engine: e}
	one, err := PlanStep(fitConfig, opt, 1)
	if err != nil {
		t.Fatal(err)
	}
	graphOnly, err := graph.Plan(fitConfig, graph.Options{Batch: 3, SeqLen: 64, Mode: graph.Train, Reduction: layers.Mean, Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	if one.Memory != graphOnly {
		t.Errorf("the step's graph memory %+v is not the graph's plan %+v", one.Memory, graphOnly)
	}
	embeddings := 2 * 1024 * c
	perLayer := c*c + 2*kv*c + c*c + 4*c*c + 4*c*c // c_q, c_k, c_v, c_proj, c_fc, mlp c_proj
	matrices := 2 * perLayer
	if want := int64(4 * (2*embeddings + matrices)); one.Optimizer != want {
		t.Errorf("optimizer state %d bytes, want %d", one.Optimizer, want)
	}
	if one.Accumulation != 0 {
		t.Errorf("one micro-batch keeps %d bytes of summed gradients", one.Accumulation)
	}
	two, _ := PlanStep(fitConfig, opt, 2)
	if want := int64(4 * fitConfig.NumParams()); two.Accumulation != want || two.Total() != one.Total()+want {
		t.Errorf("two micro-batches: %d bytes of summed gradients, want %d", two.Accumulation, want)
	}
	workers := parallel.Workers()
	attention := min(workers, 3*2) * 2 * 128 * 64 * 4
	ns := func(r, c, count int) int { return min(count, workers) * (2*r*c + 2*r*r) * 4 }
	// Shapes by orientation: (c, c) ×4 (c_q and c_proj of 2 layers), (kv, c) ×4, (4c, c) and
	// (c, 4c) ×2 each, which share their workspaces.
	want := attention + ns(c, c, 4) + ns(kv, c, 4) + ns(c, 4*c, 2)
	if one.Workspace != int64(want) {
		t.Errorf("workspace %d bytes, want %d", one.Workspace, want)
	}
	if !strings.Contains(one.String(), "optimizer state") || strings.Contains(one.String(), "summed") || !strings.Contains(two.String(), "summed gradients") {
		t.Errorf("footprints read %q and %q", one, two)
	}
	if one.Generation != 0 {
		t.Errorf("the CPU engine plans %d bytes of generation weights", one.Generation)
	}
	opt.Engine = onDevice{hostdevice.New(nil)}
	dev, err := PlanStep(fitConfig, opt, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(4 * fitConfig.NumParams()); dev.Generation != want || !strings.Contains(dev.String(), "generation weights") {
		t.Errorf("a device engine plans %d bytes of generation weights (%q), want %d", dev.Generation, dev, want)
	}
}

// onDevice is a device engine (a backend.DeviceMemory) in host memory, where a run places
// its generation model.
type onDevice struct{ *hostdevice.Device }

func (onDevice) DeviceBytes() uint64 { return 0 }

// fitter is a Fitter of fitConfig at every batch size up to 16 on the CPU engine, with limit.
func fitter(limit uint64) Fitter {
	f := Fitter{Model: fitConfig, SeqLen: 64, Reduction: layers.Mean, Engine: cpubackend.New(nil), Limit: limit,
		Accum: func(r int) int { return 16 / r }}
	for r := 1; r <= 16; r *= 2 {
		f.Rows = append(f.Rows, r)
	}
	return f
}

// limitFor is the least limit under which a step of rows with rc fits.
func limitFor(t *testing.T, rows int, rc graph.Recompute) uint64 {
	fp, err := fitter(0).Plan(rows, rc)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(float64(fp.Total())/Usable) + 1
}

// TestChoose checks the fit's choices and refusals at limits set between the plans.
func TestChoose(t *testing.T) {
	none, blocks := graph.RecomputeNone, graph.RecomputeBlocks
	// Four rows fit without recomputation and 16 with it.
	limit := max(limitFor(t, 4, none), limitFor(t, 16, blocks))
	if limit >= limitFor(t, 8, none) {
		t.Fatalf("the plans do not separate: recomputing 16 rows takes as much as keeping 8")
	}
	f := fitter(limit)
	if n, fp, _ := f.Largest(none); n != 4 || !f.fits(fp) {
		t.Errorf("largest without recomputation: %d rows", n)
	}
	if n, _, _ := f.Largest(blocks); n != 16 {
		t.Errorf("largest with recomputation: %d rows", n)
	}
	for _, c := range []struct {
		rows      int
		recompute string
		want      Fit
	}{
		{0, "auto", Fit{Rows: 16, Recompute: blocks}}, // 4 rows of 64 are under BusyTokens: recompute for more
		{0, "none", Fit{Rows: 4, Recompute: none}},
		{0, "", Fit{Rows: 16, Recompute: blocks}},
		{2, "auto", Fit{Rows: 2, Recompute: none}},
		{8, "auto", Fit{Rows: 8, Recompute: blocks}},
		{8, "blocks", Fit{Rows: 8, Recompute: blocks}},
	} {
		got, err := f.Choose(c.rows, c.recompute)
		if err != nil || got.Rows != c.want.Rows || got.Recompute != c.want.Recompute || got.Limit != limit {
			t.Errorf("Choose(%d, %q) = %d rows, recompute %v (%v); want %d, %v", c.rows, c.recompute, got.Rows, got.Recompute, err, c.want.Rows, c.want.Recompute)
		}
	}
	// A batch that fits with no recomputation is kept without it, once it is as large as a
	// busy device needs.
	long := f
	long.SeqLen = BusyTokens / 4
	long.Model.SequenceLen = long.SeqLen
	fp, err := long.Plan(4, none)
	if err != nil {
		t.Fatal(err)
	}
	long.Limit = uint64(float64(fp.Total())/Usable) + 1
	if got, err := long.Choose(0, "auto"); err != nil || got.Rows != 4 || got.Recompute != none {
		t.Errorf("a busy batch without recomputation: %d rows, recompute %v (%v)", got.Rows, got.Recompute, err)
	}

	_, err = f.Choose(8, "none")
	if err == nil || !strings.Contains(err.Error(), "the largest --device-batch-size that fits is 4 with --recompute none, 16 with --recompute blocks") ||
		!strings.Contains(err.Error(), "d2 (") || strings.Contains(err.Error(), "\n") {
		t.Errorf("8 rows without recomputation: %v", err)
	}
	tight := fitter(limitFor(t, 1, blocks))
	if _, err := tight.Choose(0, "auto"); err != nil {
		t.Errorf("one row with recomputation should fit: %v", err)
	}
	tight.Limit -= 2
	_, err = tight.Choose(0, "auto")
	if err == nil || !strings.Contains(err.Error(), "not even the smallest batch fits") {
		t.Errorf("nothing fits: %v", err)
	}
	floor := fitter(uint64(float64(f.floor())/Usable) + 1)
	if _, err := floor.Choose(1, "blocks"); err == nil || strings.Contains(err.Error(), "alone") {
		t.Errorf("a limit above the weights, gradients and optimizer state: %v", err)
	}
	floor.Limit -= 2
	if _, err := floor.Choose(1, "blocks"); err == nil || !strings.Contains(err.Error(), "optimizer state alone") {
		t.Errorf("a limit below the weights, gradients and optimizer state: %v", err)
	}
	// One micro-batch keeps no summed gradients, so the whole step in one batch can take
	// less than half of it in two: a limit between them fits the whole step alone.
	// Rows of 8 tokens: the activations are small beside the summed gradients.
	short := fitter(0)
	short.SeqLen = 8
	whole, err := short.Plan(16, blocks)
	if err != nil {
		t.Fatal(err)
	}
	if half, _ := short.Plan(8, blocks); whole.Total() < half.Total() {
		short.Limit = uint64(float64(whole.Total())/Usable) + 1
		if got, err := short.Choose(0, "blocks"); err != nil || got.Rows != 16 {
			t.Errorf("a limit that holds the whole step in one batch: %d rows (%v)", got.Rows, err)
		}
	} else {
		t.Fatalf("the test's premise: 16 rows in one batch (%d bytes) take less than 8 in two (%d)", whole.Total(), half.Total())
	}
	if _, err := f.Choose(0, "some"); err == nil || !strings.Contains(err.Error(), "none or blocks") {
		t.Errorf("a wrong recomputation: %v", err)
	}
	if got, err := fitter(0).Choose(0, "auto"); err != nil || got.Rows != 16 || got.Recompute != none {
		t.Errorf("no limit: %d rows, recompute %v (%v)", got.Rows, got.Recompute, err)
	}
}

// TestBaseFitsTheBatch runs base training with the batch and recomputation left to the fit
// under a limit that holds two rows without recomputation: it trains at two, records them,
// and a resumed run keeps them; a limit that holds no step refuses before anything is
// written.
func TestBaseFitsTheBatch(t *testing.T) {
	data, tok := fixture(t)
	s := tinySettings()
	s.TotalBatchSize, s.EvalTokens = 512, 512 // 1 to 16 rows, all with accumulation
	cfg := graph.ConfigForDepth(s.Depth, tok.VocabSize(), s.MaxSeqLen)
	fp, err := PlanStep(cfg, graph.Options{Batch: 2, SeqLen: s.MaxSeqLen, Reduction: layers.Mean, Engine: cpubackend.New(nil)}, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOCHAT_MEMORY_LIMIT", fmt.Sprint(uint64(float64(fp.Total())/Usable)+1))
	dir := filepath.Join(t.TempDir(), "d1")
	run := tinyRun(t, data, tok, dir)
	var log strings.Builder
	s.DeviceBatchSize, s.NumIterations = 0, 3
	run.Settings, run.Log = s, &log
	res, err := Base(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.GradAccum != 8 || !strings.Contains(log.String(), "device batch size: 2 rows, the largest that fits") ||
		!strings.Contains(log.String(), "at 2 rows (recompute none)") {
		t.Fatalf("accumulation %d; log:\n%s", res.Plan.GradAccum, log.String())
	}
	meta, err := checkpoint.ReadMeta(dir, 3)
	if err != nil || meta.DeviceBatchSize != 2 || meta.UserConfig["recompute"] != "none" {
		t.Fatalf("the checkpoint records %d rows, recompute %v (%v)", meta.DeviceBatchSize, meta.UserConfig["recompute"], err)
	}
	run.Resume = true
	t.Setenv("GOCHAT_MEMORY_LIMIT", "1TB") // the fit alone would now take 16 rows
	if res, err := Base(context.Background(), run); err != nil || res.Step != 3 || res.Plan.GradAccum != 8 {
		t.Fatalf("resumed with auto: %+v, %v", res, err)
	}

	floor := Fitter{Model: cfg}.floor() // a limit that holds the weights and their state, not a step
	t.Setenv("GOCHAT_MEMORY_LIMIT", fmt.Sprint(uint64(float64(floor)/Usable)+1))
	fresh := filepath.Join(t.TempDir(), "d1")
	run = tinyRun(t, data, tok, fresh)
	_, err = Base(context.Background(), run)
	if err == nil || !strings.Contains(err.Error(), "not even the smallest batch fits") {
		t.Fatalf("a step larger than the limit: %v", err)
	}
	if steps, _ := checkpoint.Steps(fresh); len(steps) != 0 {
		t.Errorf("a refused run left checkpoints %v", steps)
	}
	t.Setenv("GOCHAT_MEMORY_LIMIT", "lots")
	if _, err := Base(context.Background(), run); err == nil || !strings.Contains(err.Error(), "GOCHAT_MEMORY_LIMIT") {
		t.Errorf("a malformed limit: %v", err)
	}
}
