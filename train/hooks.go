package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gochat/checkpoint"
	"gochat/graph"
	"gochat/sampler"
)

// evaluate is the evaluation hook: the stage's validation (bits per byte, or SFT's loss),
// its log line, metrics record and plots.
func (b *baseRun) evaluate(ctx context.Context, step int) error {
	start := b.now()
	e, err := b.stage.validate(ctx, b.eval)
	if err != nil {
		return err
	}
	switch {
	case e.passAtK != nil:
		b.res.PassAtK, b.res.PassAt1 = e.passAtK, append(b.res.PassAt1, e.passAtK[0])
	case e.bpb > 0:
		b.st.valBPB = e.bpb
		if b.st.MinValBPB == nil || b.st.valBPB < *b.st.MinValBPB {
			b.st.MinValBPB = ptr(b.st.valBPB)
		}
	default:
		b.st.ValLoss = ptr(e.loss)
	}
	fmt.Fprintf(b.Log, "step %05d | %v (%.1f s)\n", step, e, b.since(start))
	if err := b.met.add(Record{Kind: "eval", Step: step, ValBPB: e.bpb, ValLoss: e.loss, PassAtK: e.passAtK}); err != nil {
		return err
	}
	if err := b.met.plot(); err != nil {
		return err
	}
	b.evalSeconds = b.since(start)
	if !b.paceStart.IsZero() {
		b.paceEvals += b.evalSeconds
	}
	return nil
}

// generation is the generation model over the training weights as they are now: made and
// placed on the engine (on a GPU it generates and scores there) at the first call, its
// weights updated at the next, so that the run's samples, measures and RL's rollouts take
// the device's memory once.
func (b *baseRun) generation() (*graph.Cached, error) {
	w, err := b.model.HostWeights()
	if err != nil {
		return nil, err
	}
	if b.gen != nil {
		return b.gen, b.gen.Update(w)
	}
	m, err := graph.NewCached(b.plan.Model, w, b.Engine)
	if err == nil {
		err = m.Place(b.Engine)
	}
	if err != nil {
		return nil, err
	}
	b.gen = m
	return m, nil
}

// measure is the hook of Run.Metrics: the measures of the current weights, logged and
// recorded.
func (b *baseRun) measure(ctx context.Context, step int) error {
	m, err := b.generation()
	if err != nil {
		return err
	}
	if b.res.Metrics, err = b.Metrics(ctx, m); err != nil {
		return err
	}
	names := make([]string, 0, len(b.res.Metrics))
	for name := range b.res.Metrics {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		names[i] = fmt.Sprintf("%s: %.4f", name, b.res.Metrics[name])
	}
	fmt.Fprintf(b.Log, "step %05d | %s\n", step, strings.Join(names, ", "))
	return b.met.add(Record{Kind: "metrics", Step: step, Metrics: b.res.Metrics})
}

// sample is the sampling hook: the prompts completed with the current weights, logged.
func (b *baseRun) sample(ctx context.Context) error {
	var err error
	if b.res.Samples, err = b.samples(ctx); err != nil {
		return err
	}
	for _, line := range b.res.Samples {
		fmt.Fprintf(b.Log, "sample: %q\n", line)
	}
	return nil
}

// save is the checkpoint hook: the wall time so far, then the step's checkpoint. In a
// distributed run every rank calls it: they exchange their data positions and gather the
// optimizer state, and rank 0 writes.
func (b *baseRun) save() error {
	b.clockWall()
	if g := b.ranks(); g.distributed() {
		p := b.dataPosition()
		var err error
		if b.st.Ranks, err = g.exchange(RankPosition{Loader: p.loader, Data: p.data}); err != nil {
			return err
		}
	}
	meta, err := b.meta()
	if err != nil {
		return err
	}
	state, err := b.trainer.State()
	if err != nil {
		return err
	}
	if !b.ranks().root() {
		b.savedAt = b.st.step
		return nil
	}
	w, err := b.model.HostWeights()
	if err != nil {
		return err
	}
	if err := checkpoint.Save(b.Dir, w, state, meta); err != nil {
		return err
	}
	fmt.Fprintf(b.Log, "saved checkpoint of step %d to %s\n", b.st.step, b.Dir)
	b.savedAt = b.st.step
	return nil
}

// dataPosition is where the data stands for a checkpoint: now, or where the step under way
// began, if it failed or stopped midway (its batches come again).
func (b *baseRun) dataPosition() *position {
	if b.stepStart != nil {
		return b.stepStart
	}
	return b.position()
}

// updateMeta completes the meta of the step just saved with what its evaluation found.
func (b *baseRun) updateMeta() error {
	b.clockWall()
	meta, err := b.meta()
	if err != nil {
		return err
	}
	return checkpoint.UpdateMeta(b.Dir, meta)
}

// clockWall adds the wall time since the last call to the loop's state.
func (b *baseRun) clockWall() {
	now := b.now()
	b.st.WallSeconds += now.Sub(b.st.wallStart).Seconds()
	b.st.wallStart = now
}

// keep saves the state the loop is at, unless it is saved already or its weights are no
// longer finite (a diverged run keeps its last good checkpoint), and returns err saying
// where the trained steps are. A rank of a distributed run saves only when the run
// diverged, which every rank sees at the same step; any other failure is this rank's
// alone, and the others cannot save with it: the launcher ends them.
func (b *baseRun) keep(err error) error {
	var diverged *DivergedError
	if b.ranks().distributed() && !errors.As(err, &diverged) {
		last := max(b.savedAt, b.first)
		if last == 0 && b.savedAt < 0 {
			return fmt.Errorf("%w (the job ends; nothing was saved)", err)
		}
		return fmt.Errorf("%w (the job ends; step %d in %s is the last checkpoint)", err, last, b.Dir)
	}
	if b.trainer != nil && b.trainer.Iter > b.st.step { // the step was taken; what failed came after
		b.st.step = b.trainer.Iter
	}
	if b.st.step == b.first && b.savedAt != b.st.step { // nothing trained: no copy of the start to mistake for a run
		if b.first == 0 {
			return fmt.Errorf("%w (before the first step: nothing was trained or saved)", err)
		}
		return fmt.Errorf("%w (before any step of this process: the checkpoint of step %d stays the last)", err, b.first)
	}
	if b.savedAt != b.st.step {
		w, rerr := b.model.HostWeights()
		if rerr != nil { // the device has failed: what it holds cannot be saved
			return fmt.Errorf("%w; the weights cannot be read back from the device to be saved: %v", err, rerr)
		}
		if ferr := w.Finite(); ferr != nil {
			if b.savedAt < 0 {
				return fmt.Errorf("%w; the weights are no longer finite and no step was saved (--save-every keeps some)", err)
			}
			return fmt.Errorf("%w; the weights are no longer finite: the last good checkpoint is step %d in %s", err, b.savedAt, b.Dir)
		}
		if serr := b.save(); serr != nil {
			return fmt.Errorf("%w; saving the %d steps trained failed too: %v", err, b.st.step, serr)
		}
	}
	return fmt.Errorf("%w (step %d, what was trained before it, is saved in %s)", err, b.st.step, b.Dir)
}

// checkPrompts checks that the sample prompts, which the last step completes, fit the
// model's positions: a run must not fail at its end on what its start could see.
func (r Run) checkPrompts(cfg graph.Config) error {
	for _, p := range r.prompts() {
		if n := 1 + len(r.Tokenizer.Encode(p)); n >= cfg.RotaryLen() {
			return fmt.Errorf("the sample prompt %q is %d tokens, and max_seq_len %d gives the model %d positions: raise it", p, n, cfg.SequenceLen, cfg.RotaryLen())
		}
	}
	return nil
}

// prompts are the prompts the samples complete.
func (r Run) prompts() []string {
	if r.Prompts == nil {
		return SamplePrompts
	}
	return r.Prompts
}

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

// samples completes SamplePrompts greedily with the model's current weights, through the
// sampler's KV-cached engine.
func (b *baseRun) samples(ctx context.Context) ([]string, error) {
	m, err := b.generation()
	if err != nil {
		return nil, err
	}
	r := b.Run
	eng, err := sampler.NewGenerator(m, r.Tokenizer)
	if err != nil {
		return nil, err
	}
	bos, err := r.Tokenizer.Special("<|bos|>")
	if err != nil {
		return nil, err
	}
	texts := r.prompts()
	out := make([]string, len(texts))
	for i, p := range texts {
		prompt := r.Tokenizer.Encode(p)
		tokens, _, err := eng.Continuations(ctx, append([]int{bos}, prompt...), sampler.Settings{MaxTokens: sampleTokens})
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

// meta is the meta file of the step the loop is at.
func (b *baseRun) meta() (checkpoint.Meta, error) {
	var user map[string]any
	raw, _ := json.Marshal(b.Settings)
	json.Unmarshal(raw, &user)
	st := &b.st
	meta := checkpoint.Meta{Step: st.step, ModelConfig: b.plan.Model, UserConfig: user,
		DeviceBatchSize: b.Settings.DeviceBatchSize, MaxSeqLen: b.Settings.MaxSeqLen,
		NumIterations: b.plan.NumIterations, Seed: b.Settings.Seed,
		Tokenizer: checkpoint.Tokenizer{Dir: b.TokenizerDir, Fingerprint: b.Tokenizer.Fingerprint()}}
	loop := st.Loop
	p := b.dataPosition()
	meta.Loader, loop.Data = p.loader, p.data
	var err error
	if meta.Loop, err = json.Marshal(loop); err != nil {
		return meta, fmt.Errorf("saving the loop's state: %w", err)
	}
	if st.MinValBPB != nil {
		meta.ValBPB = ptr(st.valBPB)
	}
	return meta, nil
}
