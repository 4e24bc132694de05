package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"time"

	"gochat/checkpoint"
	"gochat/graph"
	"gochat/internal/measure"
	"gochat/layers"
	"gochat/loader"
	"gochat/optimizers"
	"gochat/sampler"
	"gochat/tokenizer"

	"gorgonia.org/tensor"
)

// SamplePrompts are base_train's prompts, completed greedily at each sample step.
var SamplePrompts = []string{
	"The capital of France is",
	"The chemical symbol of gold is",
	"If yesterday was Friday, then tomorrow will be",
	"The opposite of hot is",
	"The planets of the solar system are:",
	"My favorite color is",
	"If 5*x + 3 = 13, then x is",
}

// sampleTokens is how many tokens a sample adds to its prompt.
const sampleTokens = 16

// Engine is what training computes with: a Gorgonia engine whose matrix products the
// custom ops and Muon's Newton-Schulz also use.
type Engine interface {
	tensor.Engine
	layers.Gemm
}

// Run is one base-training run.
type Run struct {
	Settings     Settings
	Data         string // shard folder: training shards and the validation shard (loader.Split)
	Tokenizer    *tokenizer.Tokenizer
	TokenizerDir string
	Dir          string // the run's checkpoint folder, such as base_checkpoints/d4
	Engine       Engine
	Peak         measure.Peak // what MFU is a share of; a zero Peak leaves MFU out
	Resume       bool         // continue from the last checkpoint in Dir
	Prompts      []string     // completed at each sample step (nil: SamplePrompts)

	Log      io.Writer             // the per-step lines, evaluations and samples
	Progress func(step, steps int) // called after each step; may be nil
	Now      func() time.Time      // the clock (nil: time.Now); tests give one that runs on its own
}

// now reads the run's clock.
func (r Run) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// since is the time from t to now on the run's clock, in seconds.
func (r Run) since(t time.Time) float64 { return r.now().Sub(t).Seconds() }

// Result sums up a finished (or interrupted) run.
type Result struct {
	Plan        Plan
	Step        int     // steps taken
	Loss        float64 // debiased EMA of the training loss at the end
	ValBPB      float64 // at the last evaluation
	MinValBPB   float64
	Samples     []string // the last samples, prompt and continuation
	TokPerSec   float64  // over the timed steps
	MFU         float64  // percent of Peak, over the timed steps
	Peak        measure.Peak
	DataWait    float64 // share of the step time spent waiting for batches
	Interrupted bool    // the context was cancelled; a checkpoint was saved
	Seconds     float64 // wall time of the loop
}

// smoothing is the β of the training loss's exponential moving average.
const smoothing = 0.9

// calibrationSteps are the steps a time-budgeted run times before it fixes its horizon.
const calibrationSteps = 5

// Base trains a model as nanochat's base_train does, until the horizon or until ctx is
// cancelled, saving a checkpoint at the end either way.
func Base(ctx context.Context, r Run) (*Result, error) {
	s := r.Settings
	plan, err := s.Plan(r.Tokenizer.VocabSize())
	if err != nil {
		return nil, err
	}
	trainShards, valShard, err := loader.Split(r.Data)
	if err != nil {
		return nil, err
	}
	B, T := s.DeviceBatchSize, s.MaxSeqLen
	var st state
	st.wallStart = r.now()
	weights := graph.InitWeights(plan.Model, s.Seed)
	var resumed *checkpoint.Checkpoint
	if r.Resume {
		if resumed, err = r.loadResume(plan); err != nil {
			return nil, err
		}
		weights, st.pos, st.step = resumed.Weights, resumed.Meta.Loader, resumed.Meta.Step
		st.Loop, plan.NumIterations = resumed.Meta.Loop, resumed.Meta.NumIterations
		if resumed.Meta.ValBPB != nil {
			st.valBPB = *resumed.Meta.ValBPB
		}
	}
	asked := plan.EvalSteps
	if plan.EvalSteps, err = EvalSteps([]string{valShard}, r.Tokenizer, B, T, asked); err != nil {
		return nil, fmt.Errorf("validation shard %s: %w", valShard, err)
	}
	r.printPlan(plan, trainShards, valShard)
	if plan.EvalSteps < asked {
		fmt.Fprintf(r.Log, "the validation shard holds %d batches, not the %d of eval_tokens: each evaluation reads it whole, once\n", plan.EvalSteps, asked)
	}

	model, err := graph.Build(plan.Model, graph.Options{Batch: B, SeqLen: T, Mode: graph.Train, Reduction: layers.Mean, Engine: r.Engine})
	if err != nil {
		return nil, err
	}
	defer model.Close()
	if err := model.Load(weights); err != nil {
		return nil, err
	}
	eval, err := graph.Build(plan.Model, graph.Options{Batch: B, SeqLen: T, Mode: graph.Eval, Engine: r.Engine, Share: model})
	if err != nil {
		return nil, err
	}
	defer eval.Close()
	horizon := plan.NumIterations
	if horizon == 0 { // a time budget: no warmdown until the horizon is known
		horizon = math.MaxInt32
	}
	trainer, err := NewTrainer(model, Recipe{MatrixLR: s.MatrixLR, EmbeddingLR: s.EmbeddingLR,
		UnembeddingLR: s.UnembeddingLR, WeightDecay: s.WeightDecay, GradClip: s.GradClip,
		Schedule: optimizers.Schedule{NumIterations: horizon, WarmupRatio: s.WarmupRatio, WarmdownRatio: s.WarmdownRatio, FinalLRFrac: s.FinalLRFrac}}, r.Engine)
	if err != nil {
		return nil, err
	}
	if resumed != nil {
		if err := trainer.LoadState(resumed.Optim); err != nil {
			return nil, err
		}
		if trainer.Iter != st.step {
			return nil, fmt.Errorf("resume: the optimizer state is at step %d, the checkpoint at %d", trainer.Iter, st.step)
		}
	}
	data, err := loader.NewLoader(trainShards, r.Tokenizer, B, T, 0, 1, st.pos)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	met, err := openMetrics(r.Dir, st.step)
	if err != nil {
		return nil, err
	}

	res := &Result{Plan: plan, Peak: r.Peak}
	deadline := st.wallStart.Add(time.Duration((s.TimeBudget - st.WallSeconds) * float64(time.Second)))
	var evalSeconds, timedSeconds, timedTokens, waitSeconds float64
	first := st.step
	// The pace of the loop: wall time per step after the first, bookkeeping included and
	// evaluations left out, from which a time budget fixes the horizon.
	var paceStart time.Time
	var paceEvals float64
	pace := func(step int) float64 { return (r.since(paceStart) - paceEvals) / float64(step-first) }
	budgeted := s.NumIterations <= 0 && s.TargetFLOPs <= 0 && s.TimeBudget > 0
	evalEvery := s.evalEvery(plan.NumIterations)
	for ; ; st.step++ {
		step := st.step
		last := plan.NumIterations > 0 && step >= plan.NumIterations
		stop := ctx.Err() != nil && !last // a stopped run saves and leaves; the resumed one evaluates
		if !stop && (last || (evalEvery > 0 && step%evalEvery == 0)) {
			start := r.now()
			if st.valBPB, err = BPB(eval, []string{valShard}, r.Tokenizer, plan.EvalSteps, nil); err != nil {
				return nil, err
			}
			if st.MinValBPB == nil || st.valBPB < *st.MinValBPB {
				st.MinValBPB = ptr(st.valBPB)
			}
			fmt.Fprintf(r.Log, "step %05d | validation bpb: %.4f (%.1f s)\n", step, st.valBPB, r.since(start))
			if err := met.add(Record{Kind: "eval", Step: step, ValBPB: st.valBPB}); err != nil {
				return nil, err
			}
			if err := met.plot(); err != nil {
				return nil, err
			}
			evalSeconds = r.since(start)
			if !paceStart.IsZero() {
				paceEvals += evalSeconds
			}
		}
		if !stop && (last || (s.SampleEvery > 0 && step > 0 && step%s.SampleEvery == 0)) {
			if res.Samples, err = r.samples(model); err != nil {
				return nil, err
			}
			for _, line := range res.Samples {
				fmt.Fprintf(r.Log, "sample: %q\n", line)
			}
		}
		if last || stop || (s.SaveEvery > 0 && step > 0 && step%s.SaveEvery == 0) {
			now := r.now()
			st.WallSeconds += now.Sub(st.wallStart).Seconds()
			st.wallStart = now
			if err := r.save(model, trainer, plan, &st, data.Position()); err != nil {
				return nil, err
			}
		}
		if last || stop {
			res.Interrupted = stop
			break
		}

		// One optimizer step over GradAccum micro-batches.
		waitStart := r.now()
		batches := make([]Batch, plan.GradAccum)
		for k := range batches {
			ids, targets, err := data.Next()
			if err != nil {
				return nil, err
			}
			batches[k] = Batch{IDs: ids, Targets: targets}
		}
		wait := r.since(waitStart)
		start := r.now()
		out, err := trainer.Step(batches)
		if err != nil {
			return nil, err
		}
		dt := r.since(start) + wait
		if step == first {
			paceStart = r.now()
		}
		st.SmoothLoss = smoothing*st.SmoothLoss + (1-smoothing)*out.Loss
		smooth := st.SmoothLoss / (1 - math.Pow(smoothing, float64(step+1)))
		tokPerSec := float64(plan.TokensPerStep) / dt
		mfu := r.Peak.MFU(plan.FLOPsPerToken * tokPerSec)
		st.TrainSeconds += dt
		if step > first { // the first step of a process also allocates every buffer
			timedSeconds, timedTokens, waitSeconds = timedSeconds+dt, timedTokens+float64(plan.TokensPerStep), waitSeconds+wait
		}
		of := "?????"
		if plan.NumIterations > 0 {
			of = fmt.Sprintf("%05d (%5.1f%%)", plan.NumIterations, 100*float64(step+1)/float64(plan.NumIterations))
		}
		fmt.Fprintf(r.Log, "step %05d/%s | loss: %.6f | lrm: %.2f | dt: %.0fms | tok/sec: %.0f | mfu: %.2f | total time: %.2fm\n",
			step+1, of, smooth, out.LRMultiplier, 1000*dt, tokPerSec, mfu, st.TrainSeconds/60)
		if err := met.add(Record{Kind: "train", Step: step, Loss: out.Loss, SmoothLoss: smooth, LRMultiplier: out.LRMultiplier,
			GradNorm: out.GradNorm, Seconds: dt, TokPerSec: tokPerSec, MFU: mfu, DataWait: wait}); err != nil {
			return nil, err
		}
		res.Loss = smooth
		// A time budget fixes the horizon after the first steps, and refines it after each
		// evaluation while the learning rate is still flat (so no step taken would change).
		evaluated := evalEvery > 0 && step > first && step%evalEvery == 0
		if budgeted && (plan.NumIterations == 0 && step+1-first >= calibrationSteps || evaluated && step+1 <= s.flatUntil(plan.NumIterations)) {
			stepSeconds := pace(step)
			if evalSeconds == 0 { // not measured yet: a forward pass is about a third of a step's work
				evalSeconds = float64(plan.EvalSteps) * stepSeconds / float64(3*plan.GradAccum)
			}
			left := deadline.Sub(r.now()).Seconds()
			every := evalEvery
			if plan.NumIterations == 0 && s.Evals > 0 { // the first horizon spreads the evaluations
				every = s.evalEvery(fixHorizon(step+1, left, stepSeconds, evalSeconds, 0))
			}
			n := fixHorizon(step+1, left, stepSeconds, evalSeconds, every)
			if n != plan.NumIterations && step+1 <= s.flatUntil(n) {
				plan.NumIterations, evalEvery = n, every
				res.Plan, trainer.Recipe.NumIterations = plan, n
				fmt.Fprintf(r.Log, "time budget: %.0f s left at %.0f ms a step: %d steps in all\n", left, 1000*stepSeconds, n)
			}
		} else if !budgeted && step+1-first == calibrationSteps && plan.NumIterations > step+1 {
			stepSeconds := pace(step)
			fmt.Fprintf(r.Log, "at %.0f ms a step, the %d steps left take about %s (evaluations aside)\n",
				1000*stepSeconds, plan.NumIterations-step-1, Duration(stepSeconds*float64(plan.NumIterations-step-1)))
		}
		if r.Progress != nil {
			r.Progress(step+1, plan.NumIterations)
		}
	}
	res.Step, res.ValBPB = st.step, st.valBPB
	if st.MinValBPB != nil {
		res.MinValBPB = *st.MinValBPB
	}
	if timedSeconds > 0 {
		res.TokPerSec = timedTokens / timedSeconds
		res.MFU = r.Peak.MFU(plan.FLOPsPerToken * res.TokPerSec)
		res.DataWait = waitSeconds / timedSeconds
	}
	res.Seconds = st.WallSeconds
	return res, met.plot()
}

// state is what the loop carries from step to step (Loop is what a checkpoint keeps).
type state struct {
	checkpoint.Loop
	step      int
	pos       loader.Position
	valBPB    float64
	wallStart time.Time
}

func ptr(x float64) *float64 { return &x }

// evalEvery is the number of steps between evaluations of an n-step run: EvalEvery, or with
// Evals that many evaluations spread over the run. Before a time budget has fixed the
// horizon (n = 0), Evals evaluates step 0 only.
func (s Settings) evalEvery(n int) int {
	switch {
	case s.Evals <= 0:
		return s.EvalEvery
	case n == 0:
		return math.MaxInt32
	}
	return max(1, n/s.Evals)
}

// flatUntil is the last step at which the learning rate of an n-step run is still the
// initial one (no warmup with a time budget; the warmdown takes the end).
func (s Settings) flatUntil(n int) int { return n - int(math.Round(s.WarmdownRatio*float64(n))) }

// fixHorizon turns the time left into a step count: each further step costs dt, plus an
// evaluation (evalSeconds) every evalEvery steps and one at the end.
func fixHorizon(done int, secondsLeft, dt, evalSeconds float64, evalEvery int) int {
	perStep := dt
	if evalEvery > 0 {
		perStep += evalSeconds / float64(evalEvery)
	}
	more := int((secondsLeft - evalSeconds) / perStep)
	return done + max(more, 1)
}

// printPlan prints the numbers base_train derives.
func (r Run) printPlan(p Plan, train []string, val string) {
	c := p.Model
	fmt.Fprintf(r.Log, "model: n_layer %d, n_embd %d, n_head %d, n_kv_head %d, vocab_size %d, sequence_len %d\n",
		c.NLayer, c.NEmbd, c.NHead, c.NKVHead, c.VocabSize, c.SequenceLen)
	fmt.Fprintf(r.Log, "number of parameters: %d\n", p.Params)
	fmt.Fprintf(r.Log, "estimated FLOPs per token: %e\n", p.FLOPsPerToken)
	fmt.Fprintf(r.Log, "tokens / micro-batch: %d (%d × %d), total batch size %d => gradient accumulation steps: %d\n",
		r.Settings.DeviceBatchSize*r.Settings.MaxSeqLen, r.Settings.DeviceBatchSize, r.Settings.MaxSeqLen, p.TokensPerStep, p.GradAccum)
	if p.NumIterations > 0 {
		tokens := p.NumIterations * p.TokensPerStep
		fmt.Fprintf(r.Log, "number of iterations: %d\n", p.NumIterations)
		fmt.Fprintf(r.Log, "total number of training tokens: %d\n", tokens)
		fmt.Fprintf(r.Log, "tokens : params ratio: %.2f\n", float64(tokens)/float64(p.Params))
		fmt.Fprintf(r.Log, "total training FLOPs estimate: %e\n", p.FLOPsPerToken*float64(tokens))
		if r.Peak.FLOPS > 0 {
			fmt.Fprintf(r.Log, "estimated duration: at least %s, at the full MFU reference; the first steps tell more\n",
				Duration(p.FLOPsPerToken*float64(tokens)/r.Peak.FLOPS))
		}
	} else {
		fmt.Fprintf(r.Log, "number of iterations: fixed by the %.0f s time budget after %d timed steps\n", r.Settings.TimeBudget, calibrationSteps)
	}
	fmt.Fprintf(r.Log, "data: %d training shards, validation on %s (%d steps of %d tokens per evaluation)\n",
		len(train), val, p.EvalSteps, r.Settings.DeviceBatchSize*r.Settings.MaxSeqLen)
}

// samples completes SamplePrompts greedily with the model's current weights, through the
// sampler's KV-cached engine.
func (r Run) samples(model *graph.Model) ([]string, error) {
	m, err := graph.NewCached(model.Config, model.Weights(), r.Engine)
	if err != nil {
		return nil, err
	}
	eng, err := sampler.NewGenerator(m, r.Tokenizer)
	if err != nil {
		return nil, err
	}
	bos, err := r.Tokenizer.Special("<|bos|>")
	if err != nil {
		return nil, err
	}
	texts := r.Prompts
	if texts == nil {
		texts = SamplePrompts
	}
	out := make([]string, len(texts))
	for i, p := range texts {
		prompt := r.Tokenizer.Encode(p)
		tokens, _, err := eng.Continuations(context.Background(), append([]int{bos}, prompt...), sampler.Settings{MaxTokens: sampleTokens})
		if err != nil {
			return nil, err
		}
		text, err := r.Tokenizer.Decode(append(prompt, tokens[0]...))
		if err != nil {
			return nil, err
		}
		out[i] = string(text)
	}
	return out, nil
}

// save writes the step's checkpoint.
func (r Run) save(model *graph.Model, trainer *Trainer, plan Plan, st *state, pos loader.Position) error {
	var user map[string]any
	raw, _ := json.Marshal(r.Settings)
	json.Unmarshal(raw, &user)
	meta := checkpoint.Meta{Step: st.step, ModelConfig: plan.Model, UserConfig: user,
		DeviceBatchSize: r.Settings.DeviceBatchSize, MaxSeqLen: r.Settings.MaxSeqLen,
		NumIterations: plan.NumIterations, Loader: pos, Seed: r.Settings.Seed,
		Tokenizer: checkpoint.Tokenizer{Dir: r.TokenizerDir, Fingerprint: r.Tokenizer.Fingerprint()}, Loop: st.Loop}
	if st.MinValBPB != nil {
		meta.ValBPB = ptr(st.valBPB)
	}
	if err := checkpoint.Save(r.Dir, model.Weights(), trainer.State(), meta); err != nil {
		return err
	}
	fmt.Fprintf(r.Log, "saved checkpoint of step %d to %s\n", st.step, r.Dir)
	return nil
}

// loadResume reads the run's last checkpoint and checks that it belongs to this run.
func (r Run) loadResume(plan Plan) (*checkpoint.Checkpoint, error) {
	step, err := checkpoint.LastStep(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	c, err := checkpoint.Load(r.Dir, step, true)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	m := c.Meta
	if m.Tokenizer.Fingerprint != r.Tokenizer.Fingerprint() {
		return nil, fmt.Errorf("resume: the run was trained with tokenizer %s (%s), this one is %s (%s)",
			m.Tokenizer.Fingerprint, m.Tokenizer.Dir, r.Tokenizer.Fingerprint(), r.TokenizerDir)
	}
	if m.ModelConfig != plan.Model {
		return nil, fmt.Errorf("resume: the checkpoint's model is %+v, these settings make %+v", m.ModelConfig, plan.Model)
	}
	var saved Settings
	raw, _ := json.Marshal(m.UserConfig)
	if err := json.Unmarshal(raw, &saved); err != nil {
		return nil, fmt.Errorf("resume: user_config: %w", err)
	}
	if diff := trainingDifference(saved, r.Settings); diff != "" {
		return nil, fmt.Errorf("resume: the run was started with %s", diff)
	}
	return c, nil
}

// trainingDifference names the first setting that would change the training itself (not
// its evaluation or bookkeeping) between two settings, or returns "".
func trainingDifference(saved, now Settings) string {
	for _, s := range []*Settings{&saved, &now} {
		s.EvalEvery, s.Evals, s.EvalTokens, s.SampleEvery, s.SaveEvery = 0, 0, 0, 0, 0
	}
	a, b := reflect.ValueOf(saved), reflect.ValueOf(now)
	for i := range a.NumField() {
		if !a.Field(i).Equal(b.Field(i)) {
			name := reflect.TypeOf(saved).Field(i).Tag.Get("json")
			return fmt.Sprintf("%s = %v, not %v", name, a.Field(i), b.Field(i))
		}
	}
	return ""
}
