package train

import (
	"context"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gochat/backend"
	"gochat/checkpoint"
	"gochat/cpubackend"
	"gochat/internal/hostdevice"
	"gochat/loader"
	"gochat/tokenizer"
)

// fixture packs Go's strings and bytes packages into shards and trains a 512-token
// vocabulary on them.
func fixture(t *testing.T) (data string, tok *tokenizer.Tokenizer) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "base_data")
	src := filepath.Join(runtime.GOROOT(), "src")
	paths, err := loader.Pack([]string{filepath.Join(src, "strings"), filepath.Join(src, "bytes")}, data,
		loader.PackOptions{Include: []string{"*.go"}, ValDocs: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	loader.EachDocument(paths.Paths, func(d string) bool { docs = append(docs, d); return true })
	if tok, err = tokenizer.Train(docs, tokenizer.TrainOptions{VocabSize: 512, DocCap: 10000, MaxChars: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	return data, tok
}

func tinySettings() Settings {
	s := DefaultSettings()
	s.Depth, s.MaxSeqLen, s.DeviceBatchSize, s.TotalBatchSize = 1, 32, 2, 128
	s.NumIterations, s.EvalEvery, s.EvalTokens, s.SampleEvery = 12, 4, 128, 0
	return s
}

func tinyRun(t *testing.T, data string, tok *tokenizer.Tokenizer, dir string) Run {
	return Run{Settings: tinySettings(), Data: data, Tokenizer: tok, TokenizerDir: "tok", Dir: dir,
		Engine: cpubackend.New(nil), Log: io.Discard}
}

// recordsOf are a run's metrics records of a kind ("train", "eval").
func recordsOf(t *testing.T, dir, kind string) []Record {
	m, err := openMetrics(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, r := range m.records {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func trainRecords(t *testing.T, dir string) []Record { return recordsOf(t, dir, "train") }

// TestBaseTrainsAndResumesExactly trains, evaluates, samples and saves on the CPU engine and
// on a device engine (hostdevice, whose memory the host reaches only through its copies),
// interrupts a second run and resumes it to the same losses and weights.
func TestBaseTrainsAndResumesExactly(t *testing.T) {
	data, tok := fixture(t)
	for name, engine := range map[string]func() backend.Backend{
		"cpu":    func() backend.Backend { return cpubackend.New(nil) },
		"device": func() backend.Backend { return hostdevice.New(nil) },
	} {
		t.Run(name, func(t *testing.T) { trainsAndResumes(t, data, tok, engine) })
	}
}

func trainsAndResumes(t *testing.T, data string, tok *tokenizer.Tokenizer, engine func() backend.Backend) {
	straight := filepath.Join(t.TempDir(), "d1")
	var log strings.Builder
	run := tinyRun(t, data, tok, straight)
	run.Log, run.Engine = &log, engine()
	res, err := Base(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.GradAccum != 2 || res.Step != 12 || res.Interrupted {
		t.Fatalf("result %+v", res)
	}
	records := trainRecords(t, straight)
	if len(records) != 12 || !(records[11].SmoothLoss < records[0].Loss-0.5) {
		t.Fatalf("%d steps; loss from %.3f to %.3f", len(records), records[0].Loss, records[len(records)-1].SmoothLoss)
	}
	for _, want := range []string{"gradient accumulation steps: 2", "number of iterations: 12", "validation bpb", "sample: \"The capital of France is"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	for _, name := range []string{"loss.png", "val_bpb.png"} {
		f, err := os.Open(filepath.Join(straight, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		f.Close()
	}

	// Interrupt a second run after step 5, then resume it: the same losses and weights.
	stopped := filepath.Join(t.TempDir(), "d1")
	ctx, cancel := context.WithCancel(context.Background())
	run = tinyRun(t, data, tok, stopped)
	run.Engine = engine()
	run.Progress = func(step, _ int) {
		if step == 5 {
			cancel()
		}
	}
	res, err = Base(ctx, run)
	if err != nil || !res.Interrupted || res.Step != 5 {
		t.Fatalf("interrupted run: %+v, %v", res, err)
	}
	if steps, _ := checkpoint.Steps(stopped); !slices.Equal(steps, []int{5}) {
		t.Fatalf("checkpoints after the interruption: %v", steps)
	}
	run = tinyRun(t, data, tok, stopped)
	run.Engine, run.Resume = engine(), true
	if _, err := Base(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	resumed := trainRecords(t, stopped)
	for i := range records {
		if resumed[i].Loss != records[i].Loss {
			t.Fatalf("step %d: loss %v after resuming, %v straight", i, resumed[i].Loss, records[i].Loss)
		}
	}
	a, _ := checkpoint.Load(straight, 12, true)
	b, _ := checkpoint.Load(stopped, 12, true)
	for name, w := range a.Weights {
		if !slices.Equal(w, b.Weights[name]) {
			t.Fatalf("%s differs between the straight and the resumed run", name)
		}
	}
	if *a.Meta.ValBPB != *b.Meta.ValBPB || a.Meta.Loader != b.Meta.Loader {
		t.Errorf("meta differs: %+v vs %+v", a.Meta, b.Meta)
	}
}

func TestBaseRefusesMismatches(t *testing.T) {
	data, tok := fixture(t)
	dir := filepath.Join(t.TempDir(), "d1")
	run := tinyRun(t, data, tok, dir)
	run.Settings.NumIterations = 2
	if _, err := Base(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	other := run
	other.Resume = true
	other.Settings.MatrixLR = 0.03
	if _, err := Base(context.Background(), other); err == nil || !strings.Contains(err.Error(), "matrix_lr") {
		t.Errorf("resumed with another learning rate: %v", err)
	}
	other = run
	other.Resume = true
	other.Tokenizer, _ = tokenizer.Load("../testdata/tokenizer/go-1200")
	if _, err := Base(context.Background(), other); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("resumed with another tokenizer: %v", err)
	}
	bad := run
	bad.Settings.TotalBatchSize = 100
	if _, err := Base(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "multiple") {
		t.Errorf("impossible geometry: %v", err)
	}
	bad = run
	bad.Data = t.TempDir()
	if _, err := Base(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "no shards") {
		t.Errorf("no data: %v", err)
	}
}

// tickingClock is a clock that moves on by tick at each reading, so that a run's timing, and
// all it decides from it, is the same on any machine, however slow or busy.
func tickingClock(tick time.Duration) func() time.Time {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(tick)
		return t
	}
}

// TestTimeBudget: a run given seconds instead of steps fixes its horizon from its speed and
// ends near its budget, its warmdown complete.
func TestTimeBudget(t *testing.T) {
	data, tok := fixture(t)
	run := tinyRun(t, data, tok, filepath.Join(t.TempDir(), "d1"))
	run.Settings.NumIterations, run.Settings.TargetParamDataRatio, run.Settings.TimeBudget = -1, 0, 2
	run.Settings.EvalEvery = 50
	run.Now = tickingClock(5 * time.Millisecond)
	res, err := Base(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	budget := run.Settings.TimeBudget
	if res.Step != res.Plan.NumIterations || res.Step < 20 || res.Seconds > budget || res.Seconds < 0.9*budget {
		t.Fatalf("%d of %d steps in %.2f s for a %.0f s budget", res.Step, res.Plan.NumIterations, res.Seconds, budget)
	}
	records := trainRecords(t, run.Dir)
	if last := records[len(records)-1]; last.LRMultiplier > 0.1 {
		t.Errorf("the last step ran at lr ×%.2f: the warmdown did not finish", last.LRMultiplier)
	}
}

// TestEvalsSpread: with Evals, a time-budgeted run evaluates at step 0, then that many times
// spread over the horizon it fixes, and at the end.
func TestEvalsSpread(t *testing.T) {
	data, tok := fixture(t)
	run := tinyRun(t, data, tok, filepath.Join(t.TempDir(), "d1"))
	run.Settings.NumIterations, run.Settings.TargetParamDataRatio, run.Settings.TimeBudget = -1, 0, 2
	run.Settings.EvalEvery, run.Settings.Evals = 0, 6
	run.Now = tickingClock(5 * time.Millisecond)
	res, err := Base(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	m, err := openMetrics(run.Dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for _, r := range m.records {
		if r.Kind == "eval" {
			steps = append(steps, r.Step)
		}
	}
	if n := len(steps); n < 7 || n > 9 || steps[0] != 0 || steps[n-1] != res.Step {
		t.Fatalf("evaluations at steps %v of %d", steps, res.Step)
	}
	for i := 1; i < len(steps)-1; i++ {
		if steps[i] != i*steps[1] {
			t.Fatalf("evaluations at steps %v: not evenly spread", steps)
		}
	}
	if res.Seconds > run.Settings.TimeBudget {
		t.Errorf("%.2f s for a %.0f s budget", res.Seconds, run.Settings.TimeBudget)
	}
}
