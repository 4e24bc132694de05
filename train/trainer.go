package train

import (
	"fmt"
	"math"

	"gochat/backend"
	"gochat/graph"
	"gochat/layers"
	"gochat/optimizers"
)

// Recipe is nanochat's optimisation recipe: the learning rates of the three groups, weight
// decay, clipping and the schedules.
type Recipe struct {
	MatrixLR, EmbeddingLR, UnembeddingLR, WeightDecay float64
	GradClip                                          float64 // 0: no clipping
	optimizers.Schedule
	// LR, when set, is the learning-rate multiplier at each iteration in place of the
	// Schedule's: mid-training's follows the share of its data trained on, SFT's and RL's
	// fall linearly to zero.
	LR func(iter int) float64
	// Momentum, when positive, holds Muon's momentum there (SFT and RL keep Muon's 0.95)
	// in place of base_train's ramp.
	Momentum float64
}

// lrMultiplier is the factor on every group's learning rate at iteration it.
func (r Recipe) lrMultiplier(it int) float64 {
	if r.LR != nil {
		return r.LR(it)
	}
	return r.LRMultiplier(it)
}

// momentum is Muon's momentum at iteration it.
func (r Recipe) momentum(it int) float64 {
	if r.Momentum > 0 {
		return r.Momentum
	}
	return optimizers.MuonMomentum(it)
}

// DefaultRecipe is nanochat's for a run of numIterations steps.
func DefaultRecipe(numIterations int) Recipe {
	return Recipe{MatrixLR: 0.02, EmbeddingLR: 0.2, UnembeddingLR: 0.004, GradClip: 1,
		Schedule: optimizers.Schedule{NumIterations: numIterations, WarmdownRatio: 0.2}}
}

// Batch is one micro-batch: Batch·SeqLen ids and targets of the model's shape, and for a
// per-token training graph the weights of the positions' losses (RL's).
type Batch struct {
	IDs, Targets []int
	Weights      []float32
}

// StepResult reports one optimizer step.
type StepResult struct {
	Loss         float64 // mean of the micro-batches' mean losses
	GradNorm     float64 // global gradient norm before clipping
	LRMultiplier float64
	Momentum     float64
}

// Trainer is nanochat's training step over a graph.Model built in Train mode with the mean
// reduction (or the per-token one, whose losses the batches weigh): Muon on every block matrix at MatrixLR; AdamW on wte at EmbeddingLR·s and on
// lm_head at UnembeddingLR·s, s = (n_embd/768)^−½.
type Trainer struct {
	Model  *graph.Model
	Recipe Recipe
	// Iter is the iteration the next Step takes its schedules at.
	Iter int

	muon   *optimizers.Muon
	adam   *optimizers.AdamW
	engine backend.Backend   // where the step runs: the model's engine
	acc    graph.Weights     // sum of the micro-batches' gradients, when there are several or several ranks
	shards *shards           // the data-parallel state (Distribute); nil in one process
	matrix []graph.ParamSpec // Muon's parameters, in the model's order
	embed  []graph.ParamSpec // AdamW's: wte, lm_head
}

// NewTrainer prepares the optimizers; the whole step runs on e, the model's engine.
func NewTrainer(m *graph.Model, s Recipe, e backend.Backend) (*Trainer, error) {
	if m.Mode != graph.Train || m.Reduction == layers.Sum {
		return nil, fmt.Errorf("trainer: the model must be a training graph with the mean loss or weighted per-token losses")
	}
	if s.LR == nil && s.NumIterations <= 0 {
		return nil, fmt.Errorf("trainer: the schedule needs a positive number of iterations, got %d", s.NumIterations)
	}
	t := &Trainer{Model: m, Recipe: s, muon: optimizers.NewMuon(e), adam: optimizers.NewAdamW(s.WeightDecay, e), engine: e}
	t.matrix, t.embed = paramGroups(m.Config)
	return t, nil
}

// scale is nanochat's dmodel_lr_scale for the AdamW groups.
func (t *Trainer) scale() float64 { return math.Pow(float64(t.Model.Config.NEmbd)/768, -0.5) }

// DivergedError is a step that met a NaN or infinite loss or gradient norm. The trainer
// stops before it updates anything: the weights and optimizer state are still those before
// the step.
type DivergedError struct {
	Iter  int
	What  string // "loss" or "gradient norm"
	Value float64
}

// Error implements error: the step, what diverged, and what to do about it.
func (e *DivergedError) Error() string {
	return fmt.Sprintf("step %d: the %s is %g: the run diverged (lower the learning rates, or resume from an earlier step)", e.Iter, e.What, e.Value)
}

// Step runs one optimizer step over the micro-batches: Accumulate, then Update. A
// non-finite loss or gradient norm is a *DivergedError, with nothing updated.
func (t *Trainer) Step(batches []Batch) (StepResult, error) {
	loss, err := t.Accumulate(batches)
	if err != nil {
		return StepResult{}, err
	}
	if t.shards != nil { // the mean over the ranks, which see as many micro-batches each
		if loss, err = t.shards.mean(loss); err != nil {
			return StepResult{}, err
		}
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return StepResult{Loss: loss}, &DivergedError{Iter: t.Iter, What: "loss", Value: loss}
	}
	res, err := t.Update(len(batches))
	res.Loss = loss
	return res, err
}

// Accumulate runs forward and backward on each micro-batch, adding up the gradients (in
// buffers of the trainer's own when there are several micro-batches, or several ranks:
// each run overwrites the model's), and returns the mean of their mean losses, this rank's.
func (t *Trainer) Accumulate(batches []Batch) (float64, error) {
	if len(batches) == 0 {
		return 0, fmt.Errorf("trainer: no micro-batches")
	}
	var loss float64
	for k, b := range batches {
		if t.Model.Reduction == layers.PerToken {
			if err := t.Model.SetLossWeights(b.Weights); err != nil {
				return 0, err
			}
		}
		if err := t.Model.Run(b.IDs, b.Targets); err != nil {
			return 0, err
		}
		loss += t.Model.Loss() / float64(len(batches))
		if len(batches) > 1 || t.shards != nil {
			if err := t.addGrads(k == 0); err != nil {
				return 0, err
			}
		}
	}
	return loss, nil
}

// addGrads adds the model's gradients into t.acc, or copies them there when first.
func (t *Trainer) addGrads(first bool) error {
	grads, err := t.Model.Grads()
	if err != nil {
		return err
	}
	if t.acc == nil {
		t.acc = graph.Weights{}
		for name, g := range grads {
			t.acc[name] = optimizers.Zeros(t.engine, len(g))
		}
	}
	for name, g := range grads {
		if acc := t.acc[name]; first {
			t.engine.Copy(acc, g)
		} else {
			t.engine.AddForward(acc, acc, g)
		}
	}
	return nil
}

// Update finishes a step whose gradients were accumulated over micro micro-batches (on
// each rank): each micro-batch's loss counts 1/micro (and 1/ranks); the gradients are
// clipped; AdamW then Muon update the weights (this rank's, which the ranks then exchange)
// with the schedules at t.Iter; t.Iter advances.
func (t *Trainer) Update(micro int) (StepResult, error) {
	m := t.Model
	var res StepResult
	grads, err := t.meanGrads(micro)
	if err != nil {
		return res, err
	}
	weights := m.Weights()
	all := make([][]float32, 0, len(grads))
	for _, p := range m.Config.Params() {
		if g, ok := grads[p.Name]; ok {
			all = append(all, g)
		}
	}
	var total func(float64) (float64, error)
	if t.shards != nil {
		total = t.shards.sum
	}
	if res.GradNorm, err = optimizers.ClipShared(t.engine, all, t.Recipe.GradClip, total); err != nil {
		return res, err
	}
	if math.IsNaN(res.GradNorm) || math.IsInf(res.GradNorm, 0) {
		return res, &DivergedError{Iter: t.Iter, What: "gradient norm", Value: res.GradNorm}
	}
	res.LRMultiplier = t.Recipe.lrMultiplier(t.Iter)
	res.Momentum = t.Recipe.momentum(t.Iter)

	params := func(specs []graph.ParamSpec) []optimizers.Param { // those this rank updates
		var ps []optimizers.Param
		for _, p := range specs {
			if g, ok := grads[p.Name]; ok {
				ps = append(ps, optimizers.Param{Name: p.Name, Value: weights[p.Name], Grad: g, Rows: p.Shape[0], Cols: p.Shape[1]})
			}
		}
		return ps
	}
	embed, matrix := params(t.embed), params(t.matrix)
	lrs := make([]float64, len(embed))
	for i, p := range embed {
		base := t.Recipe.UnembeddingLR
		if p.Name == "transformer.wte.weight" {
			base = t.Recipe.EmbeddingLR
		}
		lrs[i] = base * t.scale() * res.LRMultiplier
	}
	if err := t.adam.Step(embed, lrs); err != nil {
		return res, err
	}
	if err := t.muon.Step(matrix, t.Recipe.MatrixLR*res.LRMultiplier, res.Momentum); err != nil {
		return res, err
	}
	if t.shards != nil {
		if err := t.shards.gather(t.engine, m.Config.Params(), weights); err != nil {
			return res, err
		}
	}
	t.Iter++
	return res, nil
}

// meanGrads is the step's mean gradient of each parameter this rank updates: the model's
// of one micro-batch, the mean of the summed ones, or this rank's share of the mean over
// the ranks.
func (t *Trainer) meanGrads(micro int) (graph.Weights, error) {
	switch {
	case t.shards != nil:
		return t.shards.reduce(t.engine, t.Model.Config.Params(), micro)
	case micro == 1:
		return t.Model.Grads()
	}
	inv := float32(1 / float64(micro))
	for _, g := range t.acc {
		t.engine.Scale(g, inv)
	}
	return t.acc, nil
}
