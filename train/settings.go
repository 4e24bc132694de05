// Package train is nanochat's base training loop: the batch geometry and horizon derived
// from a few knobs, gradient accumulation, evaluation in bits per byte, samples, metrics
// with plots, and checkpoints that resume a run exactly.
package train

import (
	"fmt"
	"math"

	"gochat/graph"
)

// Settings are base_train's knobs, under its names (they are the checkpoint's user_config).
type Settings struct {
	Depth           int `json:"depth"`
	MaxSeqLen       int `json:"max_seq_len"`
	DeviceBatchSize int `json:"device_batch_size"` // rows a forward pass; 0: the largest that fits (a run records it)
	TotalBatchSize  int `json:"total_batch_size"`  // tokens per optimizer step

	// The horizon, the first of these that is positive: NumIterations, TargetFLOPs,
	// TimeBudget (seconds: the iterations follow from the speed of the first steps),
	// TargetParamDataRatio (training tokens per parameter).
	NumIterations        int     `json:"num_iterations"`
	TargetFLOPs          float64 `json:"target_flops"`
	TargetParamDataRatio float64 `json:"target_param_data_ratio"`
	TimeBudget           float64 `json:"time_budget"`

	EmbeddingLR   float64 `json:"embedding_lr"`
	UnembeddingLR float64 `json:"unembedding_lr"`
	MatrixLR      float64 `json:"matrix_lr"`
	WeightDecay   float64 `json:"weight_decay"`
	GradClip      float64 `json:"grad_clip"`
	WarmupRatio   float64 `json:"warmup_ratio"`
	WarmdownRatio float64 `json:"warmdown_ratio"`
	FinalLRFrac   float64 `json:"final_lr_frac"`

	EvalEvery   int    `json:"eval_every"`      // steps; 0: only at the end
	Evals       int    `json:"evals,omitempty"` // evaluations spread over the run, in place of EvalEvery (0: EvalEvery)
	EvalTokens  int    `json:"eval_tokens"`
	SampleEvery int    `json:"sample_every"` // steps; 0: only at the end
	SaveEvery   int    `json:"save_every"`   // steps; 0: only at the end
	Seed        uint64 `json:"seed"`

	// The chat stages'.
	InitLRFrac float64 `json:"init_lr_frac,omitempty"` // the learning rates above are scaled by it
	Source     string  `json:"source,omitempty"`       // the checkpoint the run starts from: its folder and step
	// AssistantOnly trains mid-training only on what SFT trains on (nanochat trains it on
	// every token).
	AssistantOnly bool `json:"assistant_only,omitempty"`
	MetricsEvery  int  `json:"eval_metrics_every,omitempty"` // steps between Run.Metrics (0: at the end only)
	NumEpochs     int  `json:"num_epochs,omitempty"`         // SFT's and RL's passes over their data (0 counts as 1)

	// RL's: problems a step, replies sampled to each and how, problems of each evaluation.
	ExamplesPerStep int     `json:"examples_per_step,omitempty"`
	NumSamples      int     `json:"num_samples,omitempty"`
	MaxNewTokens    int     `json:"max_new_tokens,omitempty"`
	Temperature     float64 `json:"temperature,omitempty"`
	TopK            int     `json:"top_k,omitempty"`
	EvalExamples    int     `json:"eval_examples,omitempty"`

	// Recompute is graph.ParseRecompute's ("none" keeps the activations, "blocks"
	// recomputes each block's in the backward pass), or "" or "auto" for the fit to choose
	// (Fitter.Choose). A run records what it chose.
	Recompute string `json:"recompute,omitempty"`

	// World is the number of processes the run is spread over (Run.Comm; 0 or 1: one).
	// Each takes TotalBatchSize/World tokens of a step; a run resumes on as many.
	World int `json:"world_size,omitempty"`
}

// ranks is the number of processes the run is spread over.
func (s Settings) ranks() int { return max(1, s.World) }

// microTokens is the tokens of one micro-batch on every rank: a step accumulates
// TotalBatchSize of them, which must be a multiple.
func (s Settings) microTokens() (int, error) {
	micro := s.DeviceBatchSize * s.MaxSeqLen * s.ranks()
	if s.TotalBatchSize%micro == 0 {
		return micro, nil
	}
	if s.ranks() > 1 {
		return 0, fmt.Errorf("total_batch_size %d is not a multiple of device_batch_size × max_seq_len × ranks = %d × %d × %d = %d",
			s.TotalBatchSize, s.DeviceBatchSize, s.MaxSeqLen, s.ranks(), micro)
	}
	return 0, fmt.Errorf("total_batch_size %d is not a multiple of device_batch_size × max_seq_len = %d × %d = %d",
		s.TotalBatchSize, s.DeviceBatchSize, s.MaxSeqLen, micro)
}

// checkRecompute refuses a recomputation that is neither graph.ParseRecompute's nor left
// to the fit.
func (s Settings) checkRecompute() error {
	if s.Recompute == "" || s.Recompute == "auto" {
		return nil
	}
	_, err := graph.ParseRecompute(s.Recompute)
	return err
}

// DefaultSettings are nanochat's base_train defaults (d20 on 8×H100, 524,288 tokens a step).
func DefaultSettings() Settings {
	return Settings{Depth: 20, MaxSeqLen: 2048, DeviceBatchSize: 32, TotalBatchSize: 524288,
		NumIterations: -1, TargetFLOPs: -1, TargetParamDataRatio: 20,
		EmbeddingLR: 0.2, UnembeddingLR: 0.004, MatrixLR: 0.02, GradClip: 1,
		WarmdownRatio: 0.2, EvalEvery: 250, EvalTokens: 20 * 524288, SampleEvery: 2000, Seed: 42}
}

// Plan is what the settings imply for a vocabulary, as base_train prints it.
type Plan struct {
	Model         graph.Config
	Params        int
	FLOPsPerToken float64
	TokensPerStep int // TotalBatchSize
	GradAccum     int // micro-batches per step, on each rank
	NumIterations int // 0 while a time budget has not been turned into steps
	EvalSteps     int // forward passes per evaluation, over all the ranks
}

// Plan derives the model and the batch geometry and checks that they fit together.
func (s Settings) Plan(vocabSize int) (Plan, error) {
	var p Plan
	if s.Depth <= 0 || s.MaxSeqLen <= 0 || s.DeviceBatchSize <= 0 || s.TotalBatchSize <= 0 {
		return p, fmt.Errorf("depth, max_seq_len, device_batch_size and total_batch_size must be positive")
	}
	if err := s.checkRecompute(); err != nil {
		return p, err
	}
	p.Model = graph.ConfigForDepth(s.Depth, vocabSize, s.MaxSeqLen)
	if err := p.Model.Validate(); err != nil {
		return p, err
	}
	p.Params, p.FLOPsPerToken, p.TokensPerStep = p.Model.NumParams(), p.Model.FLOPsPerToken(), s.TotalBatchSize
	micro, err := s.microTokens()
	if err != nil {
		return p, err
	}
	p.GradAccum = s.TotalBatchSize / micro
	p.EvalSteps = s.EvalTokens / (s.DeviceBatchSize * s.MaxSeqLen) // over all the ranks
	if p.EvalSteps < 1 {
		return p, fmt.Errorf("eval_tokens %d is less than one batch of %d tokens", s.EvalTokens, s.DeviceBatchSize*s.MaxSeqLen)
	}
	for _, f := range []struct {
		name  string
		value float64
	}{{"embedding_lr", s.EmbeddingLR}, {"unembedding_lr", s.UnembeddingLR}, {"matrix_lr", s.MatrixLR},
		{"weight_decay", s.WeightDecay}, {"grad_clip", s.GradClip}, {"time_budget", s.TimeBudget}} {
		if math.IsNaN(f.value) || math.IsInf(f.value, 0) || f.value < 0 {
			return p, fmt.Errorf("%s is %g: it must be a finite number, not negative", f.name, f.value)
		}
	}
	for _, f := range []float64{s.TargetFLOPs, s.TargetParamDataRatio} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return p, fmt.Errorf("target_flops and target_param_data_ratio must be finite numbers")
		}
	}
	for _, r := range []float64{s.WarmupRatio, s.WarmdownRatio, s.FinalLRFrac} {
		if !(r >= 0 && r <= 1) {
			return p, fmt.Errorf("warmup_ratio, warmdown_ratio and final_lr_frac must lie in [0, 1]")
		}
	}
	if s.WarmupRatio+s.WarmdownRatio > 1 {
		return p, fmt.Errorf("warmup_ratio + warmdown_ratio is %g, more than the whole run", s.WarmupRatio+s.WarmdownRatio)
	}
	switch {
	case s.NumIterations > 0:
		p.NumIterations = s.NumIterations
	case s.TargetFLOPs > 0:
		p.NumIterations = int(math.Round(s.TargetFLOPs / (p.FLOPsPerToken * float64(s.TotalBatchSize))))
	case s.TimeBudget > 0:
		if s.WarmupRatio > 0 {
			return p, fmt.Errorf("a warmup needs the horizon in steps; give num_iterations with warmup_ratio")
		}
		return p, nil
	case s.TargetParamDataRatio > 0:
		p.NumIterations = int(s.TargetParamDataRatio*float64(p.Params)) / s.TotalBatchSize
	default:
		return p, fmt.Errorf("no horizon: set num_iterations, target_flops, target_param_data_ratio or a time budget")
	}
	if p.NumIterations < 1 {
		return p, fmt.Errorf("the horizon comes to %d steps; raise it", p.NumIterations)
	}
	return p, nil
}
