package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"gochat/backend"
	"gochat/checkpoint"
	"gochat/dist"
	"gochat/graph"
	"gochat/internal/measure"
	"gochat/layers"
	"gochat/loader"
	"gochat/optimizers"
	"gochat/sampler"
	"gochat/tasks"
	"gochat/tokenizer"
)

// Run is one training run: base training (Base), mid-training (Mid) or SFT (SFT).
type Run struct {
	Stage      Stage // set by Base, Mid and SFT
	Settings   Settings
	Data       string                                    // base training: the shard folder, training shards and the validation shard (loader.Split)
	From       *checkpoint.Checkpoint                    // the chat stages: the model they start from
	Train, Val tasks.Task                                // the chat stages: the conversations trained on and validated on
	Judge      func(ex tasks.Example, reply string) bool // RL: whether a reply to ex earns its reward
	// Metrics, when set, measures the model every Settings.MetricsEvery steps and at the
	// end, by name (SFT's MMLU and ARC-Easy accuracies).
	Metrics      func(ctx context.Context, m *graph.Cached) (map[string]float64, error)
	Tokenizer    *tokenizer.Tokenizer
	TokenizerDir string
	Dir          string // the run's checkpoint folder, such as base_checkpoints/d4
	Engine       backend.Backend
	Peak         measure.Peak // what MFU is a share of; a zero Peak leaves MFU out
	Resume       bool         // continue from the last checkpoint in Dir
	// Comm, when set, spreads the run over its ranks (ranks.go): every rank runs the same
	// command; rank 0 writes the files. nil: one process.
	Comm    dist.Comm
	Prompts []string // completed at each sample step (nil: SamplePrompts)

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
	Rows        int     // sequences a forward pass: the device batch size the run took
	Step        int     // steps taken
	Loss        float64 // debiased EMA of the training loss at the end
	ValBPB      float64 // at the last evaluation (base training and mid-training)
	MinValBPB   float64
	ValLoss     float64            // at the last evaluation (SFT)
	PassAtK     []float64          // at the last evaluation (RL)
	PassAt1     []float64          // RL's pass@1 at each evaluation of this process, in order
	Rewards     []float64          // RL's mean reward at each step of this process, in order
	Metrics     map[string]float64 // the last Run.Metrics
	Reward      float64            // RL's mean reward over the last step's replies
	Samples     []string           // the last samples, prompt and continuation
	TokPerSec   float64            // over the timed steps
	MFU         float64            // percent of Peak, over the timed steps
	Peak        measure.Peak
	DataWait    float64 // share of the step time spent waiting for batches
	Interrupted bool    // the context was cancelled; a checkpoint was saved
	Seconds     float64 // wall time of the loop
}

// smoothing is the β of the training loss's exponential moving average.
const smoothing = 0.9

// Base trains a model as nanochat's base_train does, until the horizon or until ctx is
// cancelled, saving a checkpoint at the end either way. Each step is, in order: the save due
// at it, the evaluation and samples due (whose results then complete the saved meta), the
// optimizer step and its log line, and the horizon's refinement under a time budget. What
// was trained is saved before anything that can fail after it: a failing evaluation or
// sample, or a step that diverges (whose state before it is saved), ends the run with the
// trained steps on disk.
func Base(ctx context.Context, r Run) (*Result, error) {
	r.Stage = BaseStage
	return r.loop(ctx)
}

// Mid is nanochat's mid_train: r.From trained on r.Train's conversations as one token
// stream for one pass (MidStage), with the loop of Base.
func Mid(ctx context.Context, r Run) (*Result, error) {
	r.Stage = MidStage
	return r.loop(ctx)
}

// SFT is nanochat's chat_sft: r.From fine-tuned on r.Train's conversations (SFTStage), with
// the loop of Base.
func SFT(ctx context.Context, r Run) (*Result, error) {
	r.Stage = SFTStage
	return r.loop(ctx)
}

// ranks is the group the run is spread over.
func (r Run) ranks() group { return group{r.Comm} }

// loop is the training loop of every stage.
func (r Run) loop(ctx context.Context) (*Result, error) {
	b, err := r.setup(ctx)
	if err != nil {
		return nil, err
	}
	defer b.close()
	s, g := r.Settings, r.ranks()
	hooks := ctx
	if g.distributed() { // the ranks stop together, between steps: a hook of one rank alone must not
		hooks = context.WithoutCancel(ctx)
	}
	for ; ; b.st.step++ {
		step := b.st.step
		last := b.plan.NumIterations > 0 && step >= b.plan.NumIterations || b.stage.done()
		stopping := ctx.Err() != nil
		if err := g.any(&last, &stopping); err != nil {
			return nil, err
		}
		stop := stopping && !last // a stopped run saves and leaves; the resumed one evaluates
		saved := last || stop || (s.SaveEvery > 0 && step > 0 && step%s.SaveEvery == 0)
		if saved {
			if err := b.save(); err != nil {
				return nil, err
			}
		}
		evaluated := !stop && (last || (b.evalEvery > 0 && step%b.evalEvery == 0))
		if evaluated {
			if err := b.evaluate(hooks, step); err != nil {
				return b.interrupted(ctx, err)
			}
		}
		if !stop && g.root() && (last || (s.SampleEvery > 0 && step > 0 && step%s.SampleEvery == 0)) {
			if err := b.sample(hooks); err != nil {
				return b.interrupted(ctx, err)
			}
		}
		if !stop && g.root() && r.Metrics != nil && (last || s.MetricsEvery > 0 && step > 0 && step%s.MetricsEvery == 0) {
			if err := b.measure(hooks, step); err != nil {
				return b.interrupted(ctx, err)
			}
		}
		if saved && evaluated && g.root() {
			if err := b.updateMeta(); err != nil {
				return nil, err
			}
		}
		if last || stop {
			b.res.Interrupted = stop
			break
		}
		if err := b.step(step); err != nil {
			return b.interrupted(ctx, err)
		}
		if err := b.refineHorizon(step); err != nil {
			return nil, b.keep(err)
		}
		if r.Progress != nil {
			r.Progress(step+1, b.horizon(step+1))
		}
	}
	return b.finish()
}

// interrupted ends the run after a hook failed with err: a stop (ctx cancelled during an
// evaluation or the samples) saves and leaves as a stop between steps does, and the resumed
// run does that hook again; any other failure keeps what was trained.
func (b *baseRun) interrupted(ctx context.Context, err error) (*Result, error) {
	if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
		return nil, b.keep(err)
	}
	if b.savedAt != b.st.step {
		if err := b.save(); err != nil {
			return nil, err
		}
	}
	b.res.Interrupted = true
	return b.finish()
}

// baseRun is a base-training run in progress: what setup made, and the loop's state.
type baseRun struct {
	Run
	plan        Plan
	fit         Fit // the device batch size and recomputation, and their step's memory
	stage       stage
	model, eval *graph.Model  // the training graph and an evaluation graph sharing its weights
	gen         *graph.Cached // the generation model over its weights (generation)
	trainer     *Trainer
	met         *metrics
	st          state
	res         *Result
	evalEvery   int       // steps between evaluations (Settings.evalEvery of the horizon)
	savedAt     int       // the step last saved, -1 before
	release     func()    // of the run folder's lock
	stepStart   *position // where the data stood when the step under way began; nil between steps

	first                                  int       // the first step this process takes
	deadline                               time.Time // of a time budget
	evalSeconds                            float64   // the last evaluation's
	timedSeconds, timedTokens, waitSeconds float64   // over the steps after the first
	paceStart                              time.Time // the end of the first step
	paceEvals                              float64   // seconds of evaluation since paceStart
}

// setup derives the plan, reads the checkpoint to resume from, builds the graphs, the
// trainer, the stage's data and the metrics, and prints what nanochat's scripts print
// before they start.
func (r Run) setup(ctx context.Context) (b *baseRun, err error) {
	r = r.asRank()
	s, g := r.Settings, r.ranks()
	b = &baseRun{Run: r, savedAt: -1}
	run := b // the named result is nil when setup fails
	defer func() {
		if err != nil {
			run.close()
		}
	}()
	weights, err := b.begin()
	if err != nil {
		return nil, err
	}
	s = b.Settings // with the batch size and recomputation the fit settled
	if g.distributed() {
		raw, _ := json.Marshal(s)
		if err := dist.CheckSame(r.Comm, "settings", raw); err != nil {
			return nil, err
		}
	}
	B, T := s.DeviceBatchSize, s.MaxSeqLen
	b.st.wallStart = r.now()
	var resumed *checkpoint.Checkpoint
	if r.Resume {
		if resumed, err = b.loadResume(b.plan); err != nil {
			return nil, err
		}
		weights, b.st.pos, b.st.step = resumed.Weights, resumed.Meta.Loader, resumed.Meta.Step
		b.plan.NumIterations = resumed.Meta.NumIterations
		if len(resumed.Meta.Loop) > 0 {
			if err := json.Unmarshal(resumed.Meta.Loop, &b.st.Loop); err != nil {
				return nil, fmt.Errorf("resume: the loop's state in the meta file: %w", err)
			}
		}
		if resumed.Meta.ValBPB != nil {
			b.st.valBPB = *resumed.Meta.ValBPB
		}
		if g.distributed() { // each rank's data stands where its own stood
			if len(b.st.Ranks) != g.size() {
				return nil, fmt.Errorf("resume: the checkpoint keeps the data positions of %d ranks, not %d", len(b.st.Ranks), g.size())
			}
			p := b.st.Ranks[g.rank()]
			b.st.pos, b.st.Data = p.Loader, p.Data
		}
	}
	if b.Stage != BaseStage {
		if n := b.st.Examples; n != 0 && n != b.Train.Len() {
			return nil, fmt.Errorf("resume: the run trained on %d conversations, these are %d (the datasets changed since; the position would point elsewhere)", n, b.Train.Len())
		}
		b.st.Examples = b.Train.Len()
	}
	if err := b.openStage(ctx, B, T); err != nil {
		return nil, err
	}
	if g.root() {
		if b.release, err = checkpoint.Lock(r.Dir); err != nil {
			return nil, err
		}
	}
	reduction := layers.Mean
	if r.Stage == RLStage {
		reduction = layers.PerToken // weighted by the advantages
	}
	if b.model, err = graph.Build(b.plan.Model, graph.Options{Batch: B, SeqLen: T, Mode: graph.Train, Reduction: reduction, Engine: r.Engine, Recompute: b.fit.Recompute}); err != nil {
		return nil, err
	}
	if err := b.model.Load(weights); err != nil {
		return nil, err
	}
	if b.eval, err = graph.Build(b.plan.Model, graph.Options{Batch: B, SeqLen: T, Mode: graph.Eval, Engine: r.Engine, Share: b.model, ShareMemory: true}); err != nil {
		return nil, err
	}
	if b.trainer, err = NewTrainer(b.model, b.recipe(), r.Engine); err != nil {
		return nil, err
	}
	if r.Comm != nil { // one rank too: a group of one takes the step a group of many does
		if err := b.trainer.Distribute(r.Comm); err != nil {
			return nil, err
		}
	}
	if resumed != nil {
		if err := b.trainer.LoadState(resumed.Optim); err != nil {
			return nil, err
		}
		if b.trainer.Iter != b.st.step {
			return nil, fmt.Errorf("resume: the optimizer state is at step %d, the checkpoint at %d", b.trainer.Iter, b.st.step)
		}
	}
	b.met = &metrics{} // kept in memory only, on ranks other than 0
	if g.root() {
		if b.met, err = openMetrics(r.Dir, b.st.step); err != nil {
			return nil, err
		}
	}
	b.res = &Result{Plan: b.plan, Rows: s.DeviceBatchSize, Peak: r.Peak}
	b.deadline = b.st.wallStart.Add(time.Duration((s.TimeBudget - b.st.WallSeconds) * float64(time.Second)))
	b.first = b.st.step
	b.evalEvery = s.evalEvery(b.plan.NumIterations)
	return b, nil
}

// begin derives the plan, fits the step to the engine's memory (fitMemory) and returns the
// weights a new run starts from: a new model's for base training, the checkpoint's it
// comes from for the chat stages.
func (b *baseRun) begin() (graph.Weights, error) {
	if b.Stage == BaseStage {
		if err := b.fitMemory(func(s Settings) (Plan, error) { return s.Plan(b.Tokenizer.VocabSize()) }); err != nil {
			return nil, err
		}
		if err := b.checkPrompts(b.plan.Model); err != nil {
			return nil, err
		}
		return graph.InitWeights(b.plan.Model, b.Settings.Seed), nil
	}
	from := b.From
	if from == nil || b.Train == nil || b.Val == nil {
		return nil, fmt.Errorf("%v: a checkpoint to start from and tasks to train and validate on are needed", b.Stage)
	}
	if fp := from.Meta.Tokenizer.Fingerprint; fp != b.Tokenizer.Fingerprint() {
		return nil, fmt.Errorf("the checkpoint was trained with tokenizer %s (%s), this one is %s (%s)",
			fp, from.Meta.Tokenizer.Dir, b.Tokenizer.Fingerprint(), b.TokenizerDir)
	}
	if b.Train.Len() == 0 || b.Val.Len() == 0 {
		return nil, fmt.Errorf("%v: the training mixture has %d conversations and the validation one %d: both need some", b.Stage, b.Train.Len(), b.Val.Len())
	}
	if b.Stage == RLStage {
		if err := b.checkRLPrompts(); err != nil {
			return nil, err
		}
	}
	err := b.fitMemory(func(s Settings) (Plan, error) {
		if b.Stage == RLStage {
			return s.rlPlan(from.Meta.ModelConfig, b.Train.Len())
		}
		return s.chatPlan(b.Stage, from.Meta.ModelConfig, b.Train.Len())
	})
	return from.Weights, err
}

// fitMemory settles what the settings leave to the engine's memory, a device batch size of
// 0 (the largest that fits; a resumed run keeps its own) and a recomputation of "" or
// "auto" (Fitter.Choose), derives the plan with them through plan, prints the step's
// memory, and refuses a step that does not fit.
func (b *baseRun) fitMemory(plan func(Settings) (Plan, error)) error {
	s := &b.Settings
	if s.DeviceBatchSize == 0 && b.Resume {
		if step, err := checkpoint.LastStep(b.Dir); err == nil {
			if meta, err := checkpoint.ReadMeta(b.Dir, step); err == nil && meta.DeviceBatchSize > 0 {
				s.DeviceBatchSize = meta.DeviceBatchSize
			}
		}
	}
	auto := s.DeviceBatchSize == 0
	probe := *s
	if auto {
		probe.DeviceBatchSize = 1
	}
	p, err := plan(probe) // checks the settings and gives the model
	if err != nil {
		return err
	}
	limit, err := MemoryLimit(b.Engine)
	if err != nil {
		return err
	}
	f := Fitter{Model: p.Model, SeqLen: s.MaxSeqLen, Reduction: layers.Mean, Engine: b.Engine, Limit: limit}
	if b.Stage == RLStage {
		f.Reduction = layers.PerToken
		for r := 1; r <= min(s.NumSamples, sampler.MaxRows); r++ {
			if s.NumSamples%r == 0 {
				f.Rows = append(f.Rows, r)
			}
		}
		f.Accum = func(r int) int { return s.ExamplesPerStep / s.ranks() * s.NumSamples / r }
	} else {
		perRank := s.MaxSeqLen * s.ranks() // tokens of a row on every rank
		for r := 1; r*perRank <= s.TotalBatchSize; r++ {
			if s.TotalBatchSize%(r*perRank) == 0 && (b.Stage != BaseStage || r*s.MaxSeqLen <= s.EvalTokens) {
				f.Rows = append(f.Rows, r)
			}
		}
		f.Accum = func(r int) int { return s.TotalBatchSize / (r * perRank) }
	}
	if b.fit, err = f.Choose(s.DeviceBatchSize, s.Recompute); err != nil {
		return err
	}
	s.DeviceBatchSize, s.Recompute = b.fit.Rows, b.fit.Recompute.String()
	if auto {
		fmt.Fprintf(b.Log, "device batch size: %d rows, the largest that fits\n", s.DeviceBatchSize)
	}
	fmt.Fprintf(b.Log, "memory: %v\n", b.fit)
	b.plan, err = plan(*s)
	return err
}

// openStage opens the stage's data at the position the run resumes from (or the start)
// and prints the plan.
func (b *baseRun) openStage(ctx context.Context, B, T int) error {
	g := b.ranks()
	var pos tasks.Position
	if b.st.Data != nil {
		pos = *b.st.Data
	}
	switch b.Stage {
	case BaseStage:
		trainShards, valShard, err := loader.Split(b.Data)
		if err != nil {
			return err
		}
		asked := b.plan.EvalSteps
		if b.plan.EvalSteps, err = EvalSteps([]string{valShard}, b.Tokenizer, B, T, asked); err != nil {
			return fmt.Errorf("validation shard %s: %w", valShard, err)
		}
		b.printPlan(b.plan, trainShards, valShard)
		if b.plan.EvalSteps < asked {
			fmt.Fprintf(b.Log, "the validation shard holds %d batches, not the %d of eval_tokens: each evaluation reads it whole, once\n", b.plan.EvalSteps, asked)
		}
		data, err := loader.NewLoader(trainShards, b.Tokenizer, B, T, g.rank(), g.size(), b.st.pos)
		if err != nil {
			return err
		}
		b.stage = &shardStage{data: data, val: valShard, tok: b.Tokenizer, steps: b.plan.EvalSteps, g: g}
		return nil
	case MidStage:
		b.printChatPlan()
		b.stage = newMidStage(b.Run, B, T, pos, b.plan.EvalSteps, g)
	case RLStage:
		b.printChatPlan()
		if g.distributed() { // the rollouts of a step are every rank's: none stops alone
			ctx = context.WithoutCancel(ctx)
		}
		b.stage = newRLStage(ctx, b, pos)
	default:
		b.printChatPlan()
		b.stage = &sftStage{train: &tasks.SFT{Task: b.Train, Tok: b.Tokenizer, B: B, T: T, Rank: g.rank(), World: g.size(), Position: pos},
			val: &tasks.SFT{Task: b.Val, Tok: b.Tokenizer, B: B, T: T, World: 1}, steps: b.plan.EvalSteps, g: g}
	}
	return nil
}

// recipe is the stage's optimisation recipe.
func (b *baseRun) recipe() Recipe {
	if b.Stage != BaseStage {
		return b.chatRecipe()
	}
	s := b.Settings
	horizon := b.plan.NumIterations
	if horizon == 0 { // a time budget: no warmdown until the horizon is known
		horizon = math.MaxInt32
	}
	return Recipe{MatrixLR: s.MatrixLR, EmbeddingLR: s.EmbeddingLR, UnembeddingLR: s.UnembeddingLR,
		WeightDecay: s.WeightDecay, GradClip: s.GradClip,
		Schedule: optimizers.Schedule{NumIterations: horizon, WarmupRatio: s.WarmupRatio, WarmdownRatio: s.WarmdownRatio, FinalLRFrac: s.FinalLRFrac}}
}

// horizon is the number of steps the run will take, or an estimate of it after step steps
// while a stage bound to its data (mid-training) has not reached the end.
func (b *baseRun) horizon(step int) int {
	if b.plan.NumIterations > 0 {
		return b.plan.NumIterations
	}
	if mid, ok := b.stage.(*midStage); ok && mid.share() > 0 {
		return max(step, int(math.Round(float64(step)/mid.share())))
	}
	return 0
}

// close releases the stage's data.
func (b *baseRun) close() {
	if b.stage != nil {
		b.stage.close()
	}
	if b.release != nil {
		b.release()
	}
}

// step is one optimizer step over GradAccum micro-batches, with its log line and metrics.
func (b *baseRun) step(step int) error {
	plan := b.plan
	b.stepStart = b.position()
	waitStart := b.now()
	batches := make([]Batch, plan.GradAccum)
	for k := range batches {
		var err error
		if batches[k], err = b.stage.next(); err != nil {
			return err
		}
	}
	wait := b.since(waitStart)
	start := b.now()
	out, err := b.trainer.Step(batches)
	if err != nil {
		return err
	}
	b.stepStart = nil // the batches are trained on
	dt := b.since(start) + wait
	if step == b.first {
		b.paceStart = b.now()
	}
	b.st.SmoothLoss = smoothing*b.st.SmoothLoss + (1-smoothing)*out.Loss
	smooth := b.st.SmoothLoss / (1 - math.Pow(smoothing, float64(step+1)))
	tokPerSec := float64(plan.TokensPerStep) / dt
	mfu := b.Peak.MFU(plan.FLOPsPerToken * tokPerSec)
	b.st.TrainSeconds += dt
	if step > b.first { // the first step of a process also allocates every buffer
		b.timedSeconds, b.timedTokens, b.waitSeconds = b.timedSeconds+dt, b.timedTokens+float64(plan.TokensPerStep), b.waitSeconds+wait
	}
	of := "?????"
	if plan.NumIterations > 0 {
		of = fmt.Sprintf("%05d (%5.1f%%)", plan.NumIterations, 100*float64(step+1)/float64(plan.NumIterations))
	}
	rec := Record{Kind: "train", Step: step, Loss: out.Loss, SmoothLoss: smooth, LRMultiplier: out.LRMultiplier,
		GradNorm: out.GradNorm, Seconds: dt, TokPerSec: tokPerSec, MFU: mfu, DataWait: wait}
	note := b.stage.note(&rec)
	fmt.Fprintf(b.Log, "step %05d/%s | loss: %.6f | lrm: %.2f | dt: %.0fms | tok/sec: %.0f | mfu: %.2f | total time: %.2fm%s\n",
		step+1, of, smooth, out.LRMultiplier, 1000*dt, tokPerSec, mfu, b.st.TrainSeconds/60, note)
	b.res.Loss, b.res.Reward = smooth, rec.Reward
	if b.Stage == RLStage {
		b.res.Rewards = append(b.res.Rewards, rec.Reward)
	}
	return b.met.add(rec)
}

// finish sums the run up.
func (b *baseRun) finish() (*Result, error) {
	res := b.res
	res.Step, res.ValBPB = b.st.step, b.st.valBPB
	if b.st.MinValBPB != nil {
		res.MinValBPB = *b.st.MinValBPB
	}
	if b.st.ValLoss != nil {
		res.ValLoss = *b.st.ValLoss
	}
	if b.timedSeconds > 0 {
		res.TokPerSec = b.timedTokens / b.timedSeconds
		res.MFU = b.Peak.MFU(b.plan.FLOPsPerToken * res.TokPerSec)
		res.DataWait = b.waitSeconds / b.timedSeconds
	}
	res.Seconds = b.st.WallSeconds
	return res, b.met.plot()
}

// position is where a stage's data stands: base training's loader position, or a chat
// stage's.
type position struct {
	loader loader.Position
	data   *tasks.Position
}

// position is where the stage's data stands now.
func (b *baseRun) position() *position {
	var meta checkpoint.Meta
	var loop Loop
	b.stage.save(&meta, &loop)
	return &position{loader: meta.Loader, data: loop.Data}
}

// Loop is the training loop's own state at a saved step, which the checkpoint's meta keeps
// for it (checkpoint.Meta.Loop).
type Loop struct {
	SmoothLoss   float64         `json:"smooth_train_loss"`   // the EMA before bias correction
	TrainSeconds float64         `json:"total_training_time"` // the steps' time, evaluations and saves left out
	WallSeconds  float64         `json:"wall_time"`           // the whole run's, evaluations and saves included
	MinValBPB    *float64        `json:"min_val_bpb"`
	ValLoss      *float64        `json:"val_loss,omitempty"`      // SFT's last validation loss
	Examples     int             `json:"examples,omitempty"`      // a chat stage's conversations (or problems) to train on
	Data         *tasks.Position `json:"data_position,omitempty"` // a chat stage's (base training's is the meta's loader_position)
	// Ranks are where each rank's data stood, in a distributed run (Data and the meta's
	// loader_position are rank 0's).
	Ranks []RankPosition `json:"rank_positions,omitempty"`
}

// state is what the loop carries from step to step (Loop is what a checkpoint keeps).
type state struct {
	Loop
	step      int
	pos       loader.Position
	valBPB    float64
	wallStart time.Time
}

func ptr(x float64) *float64 { return &x }

// printChatPlan prints the numbers of a mid-training or SFT run.
func (b *baseRun) printChatPlan() {
	p, s := b.plan, b.Settings
	c := p.Model
	fmt.Fprintf(b.Log, "%v training from %s: n_layer %d, n_embd %d, vocab_size %d, %d parameters\n",
		b.Stage, s.Source, c.NLayer, c.NEmbd, c.VocabSize, p.Params)
	fmt.Fprintf(b.Log, "tokens / micro-batch: %d (%d × %d), total batch size %d => gradient accumulation steps: %d\n",
		s.DeviceBatchSize*s.MaxSeqLen, s.DeviceBatchSize, s.MaxSeqLen, p.TokensPerStep, p.GradAccum)
	switch {
	case p.NumIterations > 0 && b.Stage == MidStage:
		fmt.Fprintf(b.Log, "number of iterations: %d at most (rows of packed conversations; fewer if the pass ends first)\n", p.NumIterations)
	case p.NumIterations > 0:
		fmt.Fprintf(b.Log, "number of iterations: %d (%d conversations a step)\n", p.NumIterations, p.TokensPerStep/s.MaxSeqLen)
	default:
		fmt.Fprintf(b.Log, "number of iterations: one pass over the conversations\n")
	}
	fmt.Fprintf(b.Log, "data: %d conversations to train on, %d to validate on (%d batches per evaluation)\n", b.Train.Len(), b.Val.Len(), p.EvalSteps)
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
