package train

import (
	"math"
	"strings"
	"testing"
)

// TestPlanD20 checks the speedrun's numbers: d20 with a 65,536 vocabulary has 560,988,160
// parameters and trains 21,400 steps of 524,288 tokens, 8 micro-batches each on one GPU.
func TestPlanD20(t *testing.T) {
	p, err := DefaultSettings().Plan(65536)
	if err != nil {
		t.Fatal(err)
	}
	if p.Params != 560988160 || p.NumIterations != 21400 || p.GradAccum != 8 || p.EvalSteps != 160 || p.Model.NEmbd != 1280 || p.Model.NHead != 10 {
		t.Fatalf("%+v", p)
	}
}

func TestPlanHorizons(t *testing.T) {
	s := DefaultSettings()
	s.Depth, s.MaxSeqLen, s.DeviceBatchSize, s.TotalBatchSize, s.EvalTokens = 4, 256, 8, 4096, 4096
	p, _ := s.Plan(8192)
	if want := int(20*float64(p.Params)) / 4096; p.NumIterations != want || p.GradAccum != 2 {
		t.Errorf("ratio horizon %d, want %d; accumulation %d", p.NumIterations, want, p.GradAccum)
	}
	s.TargetFLOPs = 1e15
	if p, _ := s.Plan(8192); p.NumIterations != int(1e15/(p.FLOPsPerToken*4096)+0.5) {
		t.Errorf("flops horizon %d", p.NumIterations)
	}
	s.NumIterations = 7
	if p, _ := s.Plan(8192); p.NumIterations != 7 {
		t.Errorf("explicit horizon %d", p.NumIterations)
	}
	s.NumIterations, s.TargetFLOPs, s.TimeBudget = -1, -1, 60
	if p, err := s.Plan(8192); err != nil || p.NumIterations != 0 {
		t.Errorf("a time budget gives %d steps up front (%v)", p.NumIterations, err)
	}
	for name, change := range map[string]func(*Settings){
		"multiple":             func(s *Settings) { s.TotalBatchSize = 3000 },
		"eval_tokens":          func(s *Settings) { s.EvalTokens = 100 },
		"warmup":               func(s *Settings) { s.WarmupRatio = 0.1 },
		"more than":            func(s *Settings) { s.NumIterations, s.WarmupRatio, s.WarmdownRatio = 10, 0.6, 0.6 },
		"horizon comes to":     func(s *Settings) { s.TimeBudget, s.TargetParamDataRatio = 0, 1e-9 },
		"positive":             func(s *Settings) { s.Depth = 0 },
		"no horizon":           func(s *Settings) { s.TimeBudget, s.TargetParamDataRatio = 0, 0 },
		"matrix_lr is NaN":     func(s *Settings) { s.MatrixLR = math.NaN() },
		"grad_clip is -1":      func(s *Settings) { s.GradClip = -1 },
		"time_budget is -300":  func(s *Settings) { s.TimeBudget = -300 },
		"embedding_lr is +Inf": func(s *Settings) { s.EmbeddingLR = math.Inf(1) },
		"final_lr_frac":        func(s *Settings) { s.FinalLRFrac = math.NaN() },
	} {
		bad := s
		change(&bad)
		if _, err := bad.Plan(8192); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
