package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gochat/checkpoint"
	"gochat/loader"
)

// TestFailingEndKeepsTheTraining: when the last evaluation fails (the validation shard is
// damaged while the run trains), the run ends with an error that says where its trained
// steps are, and the last step's checkpoint loads.
func TestFailingEndKeepsTheTraining(t *testing.T) {
	data, tok := fixture(t)
	_, val, err := loader.Split(data)
	if err != nil {
		t.Fatal(err)
	}
	run := tinyRun(t, data, tok, filepath.Join(t.TempDir(), "d1"))
	run.Settings.EvalEvery = 0
	run.Progress = func(step, _ int) {
		if step == run.Settings.NumIterations-1 {
			os.WriteFile(val, []byte("not parquet"), 0o644)
		}
	}
	_, err = Base(context.Background(), run)
	if err == nil || !strings.Contains(err.Error(), "is saved in") {
		t.Fatalf("a failing last evaluation: %v", err)
	}
	c, err := checkpoint.Load(run.Dir, run.Settings.NumIterations, true)
	if err != nil {
		t.Fatalf("the trained steps are not saved: %v", err)
	}
	if c.Meta.Step != run.Settings.NumIterations {
		t.Errorf("saved step %d", c.Meta.Step)
	}
}

// TestDivergenceSavesNoBadWeights: learning rates that overflow the weights stop the run at
// the first step whose loss is no longer finite, with one line naming it, and no checkpoint
// of non-finite weights is written (a diverged run keeps its last good one).
func TestDivergenceSavesNoBadWeights(t *testing.T) {
	data, tok := fixture(t)
	run := tinyRun(t, data, tok, filepath.Join(t.TempDir(), "d1"))
	run.Settings.UnembeddingLR, run.Settings.EmbeddingLR, run.Settings.MatrixLR = 1e38, 1e38, 1e38
	_, err := Base(context.Background(), run)
	var diverged *DivergedError
	if !errors.As(err, &diverged) || !strings.Contains(err.Error(), "diverged") || !strings.Contains(err.Error(), "no step was saved") {
		t.Fatalf("a diverging run: %v", err)
	}
	if steps, _ := checkpoint.Steps(run.Dir); len(steps) != 0 {
		t.Errorf("non-finite weights saved as steps %v", steps)
	}
}

// TestPromptsMustFit: sample prompts longer than the model's positions are refused before
// the run trains anything.
func TestPromptsMustFit(t *testing.T) {
	data, tok := fixture(t)
	run := tinyRun(t, data, tok, filepath.Join(t.TempDir(), "d1"))
	run.Prompts = []string{strings.Repeat("a long prompt ", 40)}
	if _, err := Base(context.Background(), run); err == nil || !strings.Contains(err.Error(), "raise it") {
		t.Fatalf("a prompt past the model's positions: %v", err)
	}
	if steps, _ := checkpoint.Steps(run.Dir); len(steps) != 0 {
		t.Errorf("trained %v before refusing", steps)
	}
}

// TestStopDuringEvaluation: a stop that comes while an evaluation runs ends it after the
// batch under way; the run saves its step and leaves as a stop between steps does, and the
// resumed run evaluates that step again and finishes.
func TestStopDuringEvaluation(t *testing.T) {
	data, tok := fixture(t)
	run := tinyRun(t, data, tok, filepath.Join(t.TempDir(), "d1"))
	ctx, cancel := context.WithCancel(context.Background())
	trained := 0
	run.Progress = func(step, _ int) { trained = step }
	run.Now = func() time.Time {
		if trained == 8 { // the loop reads the clock as step 8's evaluation starts
			cancel()
		}
		return time.Now()
	}
	res, err := Base(ctx, run)
	if err != nil || !res.Interrupted || res.Step != 8 {
		t.Fatalf("stopped during the evaluation of step 8: %+v, %v", res, err)
	}
	if steps, _ := checkpoint.Steps(run.Dir); !slices.Equal(steps, []int{8}) {
		t.Fatalf("saved steps %v", steps)
	}
	run.Resume, run.Now, run.Progress = true, nil, nil
	if res, err = Base(context.Background(), run); err != nil || res.Step != run.Settings.NumIterations {
		t.Fatalf("resumed: %+v, %v", res, err)
	}
	m, _ := openMetrics(run.Dir, 1<<30)
	var evals []int
	for _, r := range m.records {
		if r.Kind == "eval" {
			evals = append(evals, r.Step)
		}
	}
	if !slices.Equal(evals, []int{0, 4, 8, 12}) {
		t.Errorf("evaluations at %v", evals)
	}
}

// TestOneWriterPerRun: a run folder another trainer is writing is refused.
func TestOneWriterPerRun(t *testing.T) {
	data, tok := fixture(t)
	run := tinyRun(t, data, tok, filepath.Join(t.TempDir(), "d1"))
	release, err := checkpoint.Lock(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := Base(context.Background(), run); err == nil || !strings.Contains(err.Error(), "another gochat") {
		t.Fatalf("a second trainer of one run: %v", err)
	}
}
