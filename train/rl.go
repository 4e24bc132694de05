package train

import (
	"context"
	"fmt"
	"strings"

	"gochat/checkpoint"
	"gochat/graph"
	"gochat/sampler"
	"gochat/tasks"
	"gochat/tokenizer"
)

// RL is nanochat's chat_rl, REINFORCE on r.Train's problems from r.From (RLStage): each
// step samples NumSamples replies to each of ExamplesPerStep problems with the current
// weights, through the KV-cached generator and its calculator; a reply's reward is 1 when
// r.Judge accepts it; its advantage is the reward less the problem's mean; and the loss is
// −Σ advantage·log p over the tokens the model sampled (neither the prompt nor the
// calculator's output), divided by the trained tokens of its pass, the passes and the
// problems. Evaluations are pass@1…pass@DeviceBatchSize on EvalExamples of r.Val.
func RL(ctx context.Context, r Run) (*Result, error) {
	r.Stage = RLStage
	if r.Judge == nil {
		return nil, fmt.Errorf("rl: a judge of the replies is needed")
	}
	return r.loop(ctx)
}

// rlPlan is the plan of an RL run: ExamplesPerStep problems a step, one pass over train
// (num_iterations caps it), NumSamples/DeviceBatchSize forward passes a problem, the
// problems shared out over the ranks.
func (s Settings) rlPlan(cfg graph.Config, train int) (Plan, error) {
	var p Plan
	switch {
	case s.DeviceBatchSize <= 0 || s.MaxSeqLen <= 0 || s.ExamplesPerStep <= 0 || s.NumSamples <= 0 || s.MaxNewTokens <= 0:
		return p, fmt.Errorf("device_batch_size, max_seq_len, examples_per_step, num_samples and max_new_tokens must be positive")
	case s.DeviceBatchSize > sampler.MaxRows:
		return p, fmt.Errorf("device_batch_size %d: replies are sampled at most %d side by side", s.DeviceBatchSize, sampler.MaxRows)
	case s.NumSamples%s.DeviceBatchSize != 0:
		return p, fmt.Errorf("num_samples %d is not a multiple of device_batch_size %d", s.NumSamples, s.DeviceBatchSize)
	case s.Temperature < 0 || s.TopK < 0:
		return p, fmt.Errorf("temperature and top_k must not be negative")
	case s.MaxSeqLen > cfg.RotaryLen():
		return p, fmt.Errorf("max_seq_len %d is beyond the model's %d positions", s.MaxSeqLen, cfg.RotaryLen())
	case s.ExamplesPerStep%s.ranks() != 0:
		return p, fmt.Errorf("examples_per_step %d is not a multiple of the %d ranks, which share a step's problems", s.ExamplesPerStep, s.ranks())
	}
	p.Model, p.Params, p.FLOPsPerToken = cfg, cfg.NumParams(), cfg.FLOPsPerToken()
	p.GradAccum = s.ExamplesPerStep / s.ranks() * s.NumSamples / s.DeviceBatchSize
	p.TokensPerStep = s.ExamplesPerStep * s.NumSamples * s.MaxSeqLen
	p.NumIterations = train / s.ExamplesPerStep * max(1, s.NumEpochs)
	if s.NumIterations > 0 {
		p.NumIterations = min(p.NumIterations, s.NumIterations)
	}
	if p.NumIterations < 1 {
		return p, fmt.Errorf("%d problems make no step of %d", train, s.ExamplesPerStep)
	}
	return p, nil
}

// LongestPrompt is the most tokens a problem of t takes as a prompt (rendered for its
// reply): RL's max_seq_len must hold it and max_new_tokens more.
func LongestPrompt(tok *tokenizer.Tokenizer, t tasks.Task) (int, error) {
	longest := 0
	for i := range t.Len() {
		ex, err := t.Example(i)
		if err != nil {
			return 0, err
		}
		prompt, err := tok.RenderForCompletion(ex.Conversation)
		if err != nil {
			return 0, fmt.Errorf("problem %d: %w", i, err)
		}
		longest = max(longest, len(prompt))
	}
	return longest, nil
}

// checkRLPrompts refuses an RL run whose longest prompt and max_new_tokens do not fit in
// max_seq_len, before anything is trained.
func (b *baseRun) checkRLPrompts() error {
	s := b.Settings
	evaluated, err := tasks.NewView(b.Val, 0, max(s.EvalExamples, 0), 1) // the problems validate uses
	if err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		task tasks.Task
	}{{"training", b.Train}, {"evaluation", evaluated}} {
		n, err := LongestPrompt(b.Tokenizer, t.task)
		if err != nil {
			return fmt.Errorf("rl: the %s problems: %w", t.name, err)
		}
		if n+s.MaxNewTokens > s.MaxSeqLen+1 {
			return fmt.Errorf("rl: the longest %s prompt is %d tokens: with max_new_tokens %d, max_seq_len must be at least %d, not %d",
				t.name, n, s.MaxNewTokens, n+s.MaxNewTokens-1, s.MaxSeqLen)
		}
	}
	return nil
}

// rlStage makes each step's micro-batches from rollouts of the training model.
type rlStage struct {
	b              *baseRun
	ctx            context.Context
	queue          []Batch
	trained, drawn int // problems whose step has been trained on (which a resume starts at), and drawn
	// The rollouts of the step under way, for its log line.
	rewards, lengths, generated float64
	seconds                     float64
}

func newRLStage(ctx context.Context, b *baseRun, pos tasks.Position) *rlStage {
	return &rlStage{b: b, ctx: ctx, trained: pos.Conv, drawn: pos.Conv}
}

// generator is the KV-cached generator over the training weights as they are now.
func (s *rlStage) generator() (*sampler.Generator, error) {
	m, err := s.b.generation()
	if err != nil {
		return nil, err
	}
	return sampler.NewGenerator(m, s.b.Tokenizer)
}

// seed is a rollout's sampling seed, one for each problem drawn and pass over it
// (splitmix64's finaliser), the same in every process so that a resumed run samples what
// the straight one does.
func seed(problem, pass int) uint64 {
	z := uint64(problem)<<16 ^ uint64(pass) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (s *rlStage) next() (Batch, error) {
	if len(s.queue) == 0 {
		if err := s.rollouts(); err != nil {
			return Batch{}, err
		}
	}
	b := s.queue[0]
	if s.queue = s.queue[1:]; len(s.queue) == 0 {
		s.trained = s.drawn
	}
	return b, nil
}

// rollouts samples the step's replies and queues their micro-batches.
func (s *rlStage) rollouts() error {
	st := s.b.Settings
	start := s.b.now()
	gen, err := s.generator()
	if err != nil {
		return err
	}
	s.rewards, s.lengths, s.generated = 0, 0, 0
	g := s.b.ranks()
	for i := range st.ExamplesPerStep { // each rank its share of the problems
		if !g.mine(i) {
			continue
		}
		batches, rewards, err := s.problem(gen, s.trained+i)
		if err != nil {
			return err
		}
		s.queue = append(s.queue, batches...)
		for _, r := range rewards {
			s.rewards += r / float64(st.ExamplesPerStep*len(rewards))
		}
	}
	s.drawn = s.trained + st.ExamplesPerStep
	s.seconds = s.b.since(start)
	return g.sum(&s.rewards, &s.lengths, &s.generated)
}

// problem samples NumSamples replies to problem n (of the task, n modulo its size) and
// makes their micro-batches: the prompt and reply as ids and targets, the targets the model
// sampled weighted by the reply's advantage over the tokens trained in the pass.
func (s *rlStage) problem(gen *sampler.Generator, n int) ([]Batch, []float64, error) {
	st, tok := s.b.Settings, s.b.Tokenizer
	B, T := st.DeviceBatchSize, st.MaxSeqLen
	ex, err := s.b.Train.Example(n % s.b.Train.Len())
	if err != nil {
		return nil, nil, err
	}
	prompt, err := tok.RenderForCompletion(ex.Conversation)
	if err != nil {
		return nil, nil, fmt.Errorf("rl: problem %d: %w", n%s.b.Train.Len(), err)
	}
	var replies [][]int
	var sampled [][]bool
	for pass := range st.NumSamples / B {
		r, m, err := gen.Continuations(s.ctx, prompt, sampler.Settings{MaxTokens: st.MaxNewTokens, Temperature: st.Temperature,
			TopK: st.TopK, Seed: seed(n, pass), Rows: B})
		if err != nil {
			return nil, nil, err
		}
		replies, sampled = append(replies, r...), append(sampled, m...)
	}
	rewards := make([]float64, len(replies))
	var mean float64
	for i, r := range replies {
		text, err := tok.Decode(r)
		if err != nil {
			return nil, nil, err
		}
		if s.b.Judge(ex, string(text)) {
			rewards[i] = 1
		}
		mean += rewards[i] / float64(len(replies))
		s.lengths += float64(len(prompt)+len(r)) / float64(st.ExamplesPerStep*len(replies))
		s.generated += float64(len(r))
	}
	pad, err := tok.Special("<|assistant_end|>")
	if err != nil {
		return nil, nil, err
	}
	batches := make([]Batch, 0, len(replies)/B)
	for p := 0; p < len(replies); p += B {
		b := Batch{IDs: make([]int, B*T), Targets: make([]int, B*T), Weights: make([]float32, B*T)}
		valid := 0
		for row := range B {
			ids := append(append([]int(nil), prompt...), replies[p+row]...)
			in, tg := b.IDs[row*T:(row+1)*T], b.Targets[row*T:(row+1)*T]
			for i := range T {
				in[i], tg[i] = pad, tasks.IgnoreIndex
				if i+1 < len(ids) {
					in[i] = ids[i]
					if j := i + 1 - len(prompt); j >= 0 && sampled[p+row][j] {
						tg[i] = ids[i+1]
						valid++
					}
				}
			}
		}
		for i, t := range b.Targets {
			if t != tasks.IgnoreIndex {
				b.Weights[i] = float32((rewards[p+i/T] - mean) / float64(valid))
			}
		}
		batches = append(batches, b)
	}
	return batches, rewards, nil
}

func (s *rlStage) note(r *Record) string {
	r.Reward, r.SeqLen = s.rewards, s.lengths
	return fmt.Sprintf(" | reward: %.4f | sequence length: %.1f | rollouts: %.0f tok/s", s.rewards, s.lengths, s.generated/max(s.seconds, 1e-9))
}

func (s *rlStage) done() bool { return false }

// validate is chat_rl's evaluation: pass@k for k = 1…DeviceBatchSize over the first
// EvalExamples problems of the val task, DeviceBatchSize replies each.
func (s *rlStage) validate(ctx context.Context, _ *graph.Model) (evaluation, error) {
	st := s.b.Settings
	gen, err := s.generator()
	if err != nil {
		return evaluation{}, err
	}
	n := min(st.EvalExamples, s.b.Val.Len())
	pass := make([]float64, st.DeviceBatchSize)
	g := s.b.ranks()
	for i := range n {
		if !g.mine(i) { // each rank its share of the problems
			continue
		}
		ex, err := s.b.Val.Example(i)
		if err != nil {
			return evaluation{}, err
		}
		prompt, err := s.b.Tokenizer.RenderForCompletion(ex.Conversation)
		if err != nil {
			return evaluation{}, err
		}
		replies, _, err := gen.Continuations(ctx, prompt, sampler.Settings{MaxTokens: st.MaxNewTokens, Temperature: st.Temperature,
			TopK: st.TopK, Seed: uint64(42 + i), Rows: st.DeviceBatchSize})
		if err != nil {
			return evaluation{}, err
		}
		solved := false
		for k, r := range replies {
			text, err := s.b.Tokenizer.Decode(r)
			if err != nil {
				return evaluation{}, err
			}
			solved = solved || s.b.Judge(ex, string(text))
			if solved {
				pass[k] += 1 / float64(n)
			}
		}
	}
	sums := make([]*float64, len(pass))
	for k := range pass {
		sums[k] = &pass[k]
	}
	return evaluation{passAtK: pass}, g.sum(sums...)
}

func (s *rlStage) save(_ *checkpoint.Meta, loop *Loop) { loop.Data = &tasks.Position{Conv: s.trained} }

func (s *rlStage) close() {}

// passAtK formats pass@1…pass@k.
func passAtK(p []float64) string {
	parts := make([]string, len(p))
	for k, v := range p {
		parts[k] = fmt.Sprintf("pass@%d: %.4f", k+1, v)
	}
	return strings.Join(parts, ", ")
}
