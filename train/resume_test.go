package train

import (
	"testing"

	"gochat/graph"
)

// TestFirstDifference: a refused resume names the first setting that differs by its JSON
// name, with the saved value and the new one; settings that only evaluate or save differ
// freely.
func TestFirstDifference(t *testing.T) {
	a := graph.Config{SequenceLen: 64, VocabSize: 512, NLayer: 2, NHead: 1, NKVHead: 1, NEmbd: 128}
	b := a
	if d := firstDifference(a, b); d != "" {
		t.Errorf("equal configs: %q", d)
	}
	b.SequenceLen, b.NLayer = 1024, 4
	if d, want := firstDifference(a, b), "sequence_len = 64, not 1024"; d != want {
		t.Errorf("got %q, want %q", d, want)
	}
	saved := Settings{Depth: 2, EvalEvery: 250, TargetParamDataRatio: 20}
	now := saved
	now.EvalEvery, now.SaveEvery = 10, 5
	if d := trainingDifference(saved, now); d != "" {
		t.Errorf("evaluation cadences: %q", d)
	}
	saved.NumIterations, now.NumIterations = 0, -1 // "none" either way
	if d := trainingDifference(saved, now); d != "" {
		t.Errorf("num_iterations 0 and -1: %q", d)
	}
	now.TargetParamDataRatio = 0.1
	if d, want := trainingDifference(saved, now), "target_param_data_ratio = 20, not 0.1"; d != want {
		t.Errorf("got %q, want %q", d, want)
	}
}
