package train

import (
	"context"
	"fmt"
	"math"

	"gochat/checkpoint"
	"gochat/graph"
	"gochat/loader"
	"gochat/tasks"
	"gochat/tokenizer"
)

// Stage names the runs of the training loop: nanochat's base_train, mid_train and
// chat_sft. They differ in where the model and the micro-batches come from, what an
// evaluation measures, and where the horizon lies; the loop (base.go) is the same.
type Stage int

const (
	// BaseStage trains a new model on the shards of Run.Data.
	BaseStage Stage = iota
	// MidStage trains Run.From on the conversations of Run.Train rendered into one token
	// stream, every token trained on, for one pass; validation in bits per byte on Run.Val's
	// stream; the learning rate flat, then falling to zero over the last 20% of the data.
	MidStage
	// SFTStage fine-tunes Run.From on Run.Train's conversations, one a row, trained on the
	// assistant's tokens only; validation loss on Run.Val; the learning rate falling
	// linearly to zero over the steps; Muon's momentum fixed at 0.95.
	SFTStage
	// RLStage is REINFORCE on Run.Train's problems judged by Run.Judge (rl.go).
	RLStage
)

// String is the stage's short name, as the loop's messages print it: "base", "mid", "sft"
// or "rl".
func (s Stage) String() string { return [...]string{"base", "mid", "sft", "rl"}[s] }

// stage is a running stage's part of the loop.
type stage interface {
	// next is the next micro-batch.
	next() (Batch, error)
	// done says that a one-pass stage has used its data up: the loop ends at this step.
	done() bool
	// validate measures the evaluation graph m, which shares the training weights.
	validate(ctx context.Context, m *graph.Model) (evaluation, error)
	// save writes where the data stands into a checkpoint's meta and loop state.
	save(meta *checkpoint.Meta, loop *Loop)
	// note adds what the stage measured in a step to its record and returns it for the
	// step's log line.
	note(r *Record) string
	close()
}

// evaluation is one validation: bits per byte, a mean loss, or RL's pass@k.
type evaluation struct {
	bpb, loss float64
	passAtK   []float64
}

func (e evaluation) String() string {
	switch {
	case e.passAtK != nil:
		return passAtK(e.passAtK)
	case e.bpb > 0:
		return fmt.Sprintf("validation bpb: %.4f", e.bpb)
	}
	return fmt.Sprintf("validation loss: %.6f", e.loss)
}

// shardStage is base training's: shards through the loader, validation bpb on the
// validation shard.
type shardStage struct {
	data  *loader.Loader
	val   string
	tok   *tokenizer.Tokenizer
	steps int
	g     group // shares the validation batches out
}

func (s *shardStage) next() (Batch, error) {
	ids, targets, err := s.data.Next()
	return Batch{IDs: ids, Targets: targets}, err
}

func (s *shardStage) done() bool { return false }

func (s *shardStage) validate(ctx context.Context, m *graph.Model) (evaluation, error) {
	ld, err := loader.NewLoader([]string{s.val}, s.tok, s.data.B, s.data.T, 0, 1, loader.Position{})
	if err != nil {
		return evaluation{}, err
	}
	defer ld.Close()
	bpb, err := bpbOf(ctx, m, s.tok, s.steps, loaderBatches(ld), nil, s.g)
	return evaluation{bpb: bpb}, err
}

func (s *shardStage) save(meta *checkpoint.Meta, _ *Loop) { meta.Loader = s.data.Position() }

func (s *shardStage) note(*Record) string { return "" }

func (s *shardStage) close() { s.data.Close() }

// midStage is mid-training's: the train task's token stream, read one micro-batch ahead
// as nanochat's loop does, so that the step whose next batch reaches the last
// conversation is the last. The batch ahead is rendered while the step computes.
type midStage struct {
	train, val *tasks.Mid
	pending    chan fetched // the batch ahead, once rendered
	ahead      *fetched     // the batch ahead, received
	steps      int
	tok        *tokenizer.Tokenizer
	g          group // shares the validation batches out
}

// fetched is a batch of the stream and the stream's position before it, which a resume
// starts at.
type fetched struct {
	Batch
	before tasks.Position
	err    error
}

// newMidStage starts this rank's stream at pos and starts reading its first batch.
func newMidStage(r Run, B, T int, pos tasks.Position, steps int, g group) *midStage {
	masked := r.Settings.AssistantOnly
	s := &midStage{train: &tasks.Mid{Task: r.Train, Tok: r.Tokenizer, B: B, T: T, Rank: g.rank(), World: g.size(), Masked: masked, Position: pos},
		val: &tasks.Mid{Task: r.Val, Tok: r.Tokenizer, B: B, T: T, World: 1, Masked: masked}, steps: steps, tok: r.Tokenizer, g: g}
	s.fetch()
	return s
}

// fetch starts rendering the next batch; only settle reads the stream after it.
func (s *midStage) fetch() {
	s.pending, s.ahead = make(chan fetched, 1), nil
	go func() {
		f := fetched{before: s.train.Position}
		f.IDs, f.Targets, f.err = s.train.Batch()
		s.pending <- f
	}()
}

// settle waits for the batch ahead.
func (s *midStage) settle() *fetched {
	if s.ahead == nil {
		f := <-s.pending
		s.ahead = &f
	}
	return s.ahead
}

func (s *midStage) next() (Batch, error) {
	f := s.settle()
	if f.err != nil {
		return Batch{}, f.err
	}
	s.fetch()
	return f.Batch, nil
}

func (s *midStage) done() bool {
	s.settle()
	return s.train.Done()
}

// share is the part of the data trained on once the batch ahead is: nanochat's progress.
func (s *midStage) share() float64 {
	s.settle()
	return s.train.Progress()
}

func (s *midStage) validate(ctx context.Context, m *graph.Model) (evaluation, error) {
	val := *s.val // from the start of the stream each time
	bpb, err := bpbOf(ctx, m, s.tok, s.steps, func() (Batch, bool, error) {
		ids, targets, err := val.Batch()
		return Batch{IDs: ids, Targets: targets}, val.Epoch == 0, err
	}, nil, s.g)
	return evaluation{bpb: bpb}, err
}

func (s *midStage) save(_ *checkpoint.Meta, loop *Loop) { loop.Data = &s.settle().before }

func (s *midStage) note(*Record) string { return "" }

func (s *midStage) close() { s.settle() }

// sftStage is SFT's: conversations one a row, validation loss on the val task's rows.
type sftStage struct {
	train, val *tasks.SFT
	steps      int
	g          group // shares the validation batches out
	filled     int   // train.Filled at the last note
	batches    int   // batches since then
}

func (s *sftStage) next() (Batch, error) {
	ids, targets, err := s.train.Batch()
	s.batches++
	return Batch{IDs: ids, Targets: targets}, err
}

func (s *sftStage) done() bool { return false }

// validate is chat_sft's validation loss: the mean over steps batches of each batch's mean
// loss over its trained targets, from the val task's first conversation (at most one pass),
// each rank scoring its share of the batches.
func (s *sftStage) validate(ctx context.Context, m *graph.Model) (evaluation, error) {
	val := *s.val
	var sum float64
	n := 0
	for ; n < s.steps && (n == 0 || val.Epoch == 0); n++ {
		if err := ctx.Err(); err != nil {
			return evaluation{}, err
		}
		ids, targets, err := val.Batch()
		if err != nil {
			return evaluation{}, err
		}
		if !s.g.mine(n) {
			continue
		}
		if err := m.Run(ids, targets); err != nil {
			return evaluation{}, err
		}
		var loss float64
		count := 0
		for i, l := range m.Output() {
			if targets[i] != tasks.IgnoreIndex {
				loss += float64(l)
				count++
			}
		}
		sum += loss / float64(max(count, 1))
	}
	err := s.g.sum(&sum)
	return evaluation{loss: sum / float64(n)}, err
}

func (s *sftStage) save(_ *checkpoint.Meta, loop *Loop) {
	p := s.train.Position
	loop.Data = &p
}

// note says how much of the step's batches was padding: the work spent on no conversation.
func (s *sftStage) note(r *Record) string {
	positions := s.batches * s.train.B * s.train.T
	r.Padding = 1 - float64(s.train.Filled-s.filled)/float64(max(positions, 1))
	s.filled, s.batches = s.train.Filled, 0
	note := fmt.Sprintf(" | padding: %.1f%%", 100*r.Padding)
	if s.train.Truncated > 0 {
		note += fmt.Sprintf(" | cut to fit: %d conversations so far", s.train.Truncated)
	}
	return note
}

func (s *sftStage) close() {}

// chatPlan is the plan of a mid-training or SFT run of the model cfg on train: the batch
// geometry from the settings; SFT's horizon is one pass over train, mid-training's the end
// of its data (NumIterations 0); num_iterations caps either.
func (s Settings) chatPlan(st Stage, cfg graph.Config, train int) (Plan, error) {
	var p Plan
	if s.MaxSeqLen <= 0 || s.DeviceBatchSize <= 0 || s.TotalBatchSize <= 0 || s.EvalTokens <= 0 {
		return p, fmt.Errorf("max_seq_len, device_batch_size, total_batch_size and eval_tokens must be positive")
	}
	for _, f := range []float64{s.EmbeddingLR, s.UnembeddingLR, s.MatrixLR, s.WeightDecay, s.InitLRFrac} {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return p, fmt.Errorf("the learning rates, weight_decay and init_lr_frac must be finite numbers, not negative")
		}
	}
	p.Model, p.Params, p.FLOPsPerToken, p.TokensPerStep = cfg, cfg.NumParams(), cfg.FLOPsPerToken(), s.TotalBatchSize
	micro, err := s.microTokens()
	if err != nil {
		return p, err
	}
	p.GradAccum, p.EvalSteps = s.TotalBatchSize/micro, max(1, s.EvalTokens/(s.DeviceBatchSize*s.MaxSeqLen))
	if st == MidStage && s.NumIterations > 0 {
		p.NumIterations = s.NumIterations
	}
	if st == SFTStage {
		perStep := s.TotalBatchSize / s.MaxSeqLen // conversations a step
		p.NumIterations = train / perStep * max(1, s.NumEpochs)
		if s.NumIterations > 0 {
			p.NumIterations = min(p.NumIterations, s.NumIterations)
		}
		if p.NumIterations < 1 {
			return p, fmt.Errorf("%d conversations make no step of %d", train, perStep)
		}
	}
	return p, nil
}

// chatRecipe is the recipe of a chat stage: the learning rates scaled by init_lr_frac,
// no clipping, and the stage's schedules.
func (b *baseRun) chatRecipe() Recipe {
	s := b.Settings
	r := Recipe{MatrixLR: s.MatrixLR * s.InitLRFrac, EmbeddingLR: s.EmbeddingLR * s.InitLRFrac,
		UnembeddingLR: s.UnembeddingLR * s.InitLRFrac, WeightDecay: s.WeightDecay}
	switch b.Stage {
	case MidStage:
		mid, n := b.stage.(*midStage), b.plan.NumIterations
		r.LR = func(it int) float64 {
			p := mid.share() // or the share of the steps, when they end the run first
			if n > 0 {
				p = max(p, float64(it+1)/float64(n))
			}
			if p >= 0.8 {
				return max(0, 1-(p-0.8)/0.2)
			}
			return 1
		}
	case SFTStage, RLStage:
		n := float64(b.plan.NumIterations)
		r.LR = func(it int) float64 { return 1 - float64(it)/n }
		r.Momentum = 0.95
	}
	return r
}
