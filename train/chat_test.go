package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gochat/backend"
	"gochat/checkpoint"
	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/hostdevice"
	"gochat/tasks"
	"gochat/tokenizer"
)

// baseCheckpoint trains the tiny base model and returns its last checkpoint.
func baseCheckpoint(t *testing.T) (*checkpoint.Checkpoint, *tokenizer.Tokenizer) {
	t.Helper()
	data, tok := fixture(t)
	dir := filepath.Join(t.TempDir(), "base")
	if _, err := Base(context.Background(), tinyRun(t, data, tok, dir)); err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.Load(dir, 12, false)
	if err != nil {
		t.Fatal(err)
	}
	return c, tok
}

// chatRun is a run of a chat stage on synthetic arithmetic conversations.
func chatRun(from *checkpoint.Checkpoint, tok *tokenizer.Tokenizer, dir string, st Stage) Run {
	r := tinyRun(nil, "", tok, dir)
	s := &r.Settings
	s.InitLRFrac, s.Source, s.EvalEvery, s.EvalTokens, s.NumIterations = 1, "base step 12", 10, 256, -1 // the data's steps
	r.Train, r.Val = tasks.Arithmetic(120, 1), tasks.Arithmetic(16, 2)
	if st == SFTStage {
		s.MaxSeqLen, s.DeviceBatchSize, s.TotalBatchSize, s.EvalTokens = 64, 2, 4*64, 4*64
		s.InitLRFrac = 0.5
	}
	r.From = from
	return r
}

// stageRun runs a chat stage.
func stageRun(ctx context.Context, r Run, st Stage) (*Result, error) {
	switch st {
	case MidStage:
		return Mid(ctx, r)
	case RLStage:
		return RL(ctx, r)
	}
	return SFT(ctx, r)
}

// evalRecords are a run's validations, in bpb or loss.
func evalRecords(t *testing.T, dir string) []float64 {
	var out []float64
	for _, r := range recordsOf(t, dir, "eval") {
		out = append(out, r.ValBPB+r.ValLoss)
	}
	return out
}

// TestChatStages: mid-training on synthetic conversations, then SFT from its checkpoint,
// each lowers its validation measure by a margin, ends where its data says (mid: one pass;
// SFT: a conversation per row, a pass over the data), and a run stopped midway and resumed
// ends with the straight run's weights and losses, bit for bit.
func TestChatStages(t *testing.T) {
	base, tok := baseCheckpoint(t)
	from := base
	for _, st := range []Stage{MidStage, SFTStage} {
		dir := filepath.Join(t.TempDir(), st.String())
		var log strings.Builder
		r := chatRun(from, tok, dir, st)
		r.Log = &log
		var measured []int
		r.Settings.MetricsEvery = 10
		r.Metrics = func(_ context.Context, m *graph.Cached) (map[string]float64, error) {
			measured = append(measured, m.Config.NLayer)
			return map[string]float64{"arc_easy_acc": 0.25, "mmlu_acc": 0.5}, nil
		}
		res, err := stageRun(context.Background(), r, st)
		if err != nil {
			t.Fatalf("%v: %v", st, err)
		}
		evals := evalRecords(t, dir)
		if len(evals) < 2 || !(evals[len(evals)-1] < 0.9*evals[0]) {
			t.Errorf("%v: validation went %v", st, evals)
		}
		switch st {
		case MidStage:
			// 120 conversations of about 70 tokens, 2 micro-batches of 65 a step.
			if res.Step < 30 || res.Step > 120 || res.ValBPB <= 0 {
				t.Errorf("mid: %d steps, val bpb %v", res.Step, res.ValBPB)
			}
		case SFTStage:
			if res.Step != 120/4 || res.ValLoss <= 0 {
				t.Errorf("sft: %d steps (want %d), val loss %v", res.Step, 120/4, res.ValLoss)
			}
			// Conversations of about 70 tokens in rows of 64: little padding, some.
			if p := trainRecords(t, dir)[0].Padding; !(p > 0 && p < 0.5) || !strings.Contains(log.String(), "| padding: ") {
				t.Errorf("sft: padding %v", p)
			}
		}
		if len(measured) != res.Step/10+min(res.Step%10, 1) || !strings.Contains(log.String(), "| arc_easy_acc: 0.2500, mmlu_acc: 0.5000") {
			t.Errorf("%v: %d measures in %d steps; log:\n%s", st, len(measured), res.Step, log.String())
		}
		if !strings.Contains(log.String(), "training from base step 12") {
			t.Errorf("%v log:\n%s", st, log.String())
		}

		stopped := filepath.Join(t.TempDir(), st.String())
		ctx, cancel := context.WithCancel(context.Background())
		r = chatRun(from, tok, stopped, st)
		r.Progress = func(step, _ int) {
			if step == 7 {
				cancel()
			}
		}
		if part, err := stageRun(ctx, r, st); err != nil || !part.Interrupted || part.Step != 7 {
			t.Fatalf("%v interrupted: %+v, %v", st, part, err)
		}
		r = chatRun(from, tok, stopped, st)
		r.Resume = true
		again, err := stageRun(context.Background(), r, st)
		if err != nil {
			t.Fatalf("%v resumed: %v", st, err)
		}
		if again.Step != res.Step {
			t.Fatalf("%v: the resumed run ended at step %d, the straight one at %d", st, again.Step, res.Step)
		}
		a, err := checkpoint.Load(dir, res.Step, true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := checkpoint.Load(stopped, res.Step, true)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range a.Weights {
			if !slices.Equal(w, b.Weights[name]) {
				t.Fatalf("%v: %s differs between the straight and the resumed run", st, name)
			}
		}
		if !slices.Equal(evalRecords(t, dir), evalRecords(t, stopped)) {
			t.Errorf("%v: validations %v straight, %v resumed", st, evalRecords(t, dir), evalRecords(t, stopped))
		}
		from = a
	}
}

// TestMidNumIterations: num_iterations ends mid-training before its data does, and the
// learning rate falls to zero over the last 20% of those steps.
func TestMidNumIterations(t *testing.T) {
	base, tok := baseCheckpoint(t)
	dir := filepath.Join(t.TempDir(), "mid")
	r := chatRun(base, tok, dir, MidStage)
	r.Settings.NumIterations = 10 // of the 30 and more its data makes (TestChatStages)
	res, err := Mid(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	recs := trainRecords(t, dir)
	if res.Step != 10 || len(recs) != 10 {
		t.Fatalf("%d steps, %d records; want 10", res.Step, len(recs))
	}
	for i, want := range []float64{1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0} {
		if math.Abs(recs[i].LRMultiplier-want) > 1e-9 {
			t.Errorf("step %d: lr multiplier %v, want %v", i, recs[i].LRMultiplier, want)
		}
	}
}

// TestChatStagesRefuse: a stage without conversations, or from a checkpoint of another
// tokenizer, stops before training with one clear error.
func TestChatStagesRefuse(t *testing.T) {
	base, tok := baseCheckpoint(t)
	r := chatRun(base, tok, filepath.Join(t.TempDir(), "mid"), MidStage)
	r.Train = tasks.Arithmetic(0, 1)
	if _, err := Mid(context.Background(), r); err == nil || !strings.Contains(err.Error(), "0 conversations") {
		t.Errorf("an empty mixture: %v", err)
	}
	r = rlRun(base, tok, filepath.Join(t.TempDir(), "rl"))
	r.Settings.MaxSeqLen = 40
	if _, err := RL(context.Background(), r); err == nil || !strings.Contains(err.Error(), "max_seq_len must be at least") {
		t.Errorf("prompts longer than max_seq_len: %v", err)
	}
	other := *base
	other.Meta.Tokenizer.Fingerprint = "another"
	r = chatRun(&other, tok, filepath.Join(t.TempDir(), "sft"), SFTStage)
	if _, err := SFT(context.Background(), r); err == nil || !strings.Contains(err.Error(), "tokenizer another") {
		t.Errorf("another tokenizer: %v", err)
	}
}

// rlRun is an RL run on arithmetic prompts whose judge rewards a reply holding a "(": a
// reward the tiny model earns now and then from the start.
func rlRun(from *checkpoint.Checkpoint, tok *tokenizer.Tokenizer, dir string) Run {
	r := tinyRun(nil, "", tok, dir)
	s := &r.Settings
	s.MaxSeqLen, s.DeviceBatchSize, s.NumIterations = 96, 4, 24
	s.ExamplesPerStep, s.NumSamples, s.MaxNewTokens, s.Temperature, s.TopK, s.EvalExamples = 2, 8, 12, 1, 50, 4
	s.InitLRFrac, s.Source, s.EvalEvery, s.SaveEvery = 1, "sft step 30", 12, 0
	r.Train, r.Val, r.From = tasks.Arithmetic(200, 5), tasks.Arithmetic(8, 6), from
	r.Judge = func(_ tasks.Example, reply string) bool { return strings.Contains(reply, "(") }
	return r
}

// TestRL: REINFORCE raises the mean reward of the replies (the first six steps' against the
// last six), reports pass@k, and a run stopped and resumed samples and ends as the
// straight one does, bit for bit.
func TestRL(t *testing.T) {
	from, tok := baseCheckpoint(t)
	dir := filepath.Join(t.TempDir(), "rl")
	var log strings.Builder
	r := rlRun(from, tok, dir)
	r.Log = &log
	res, err := RL(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	rewards := func(dir string) []float64 {
		var out []float64
		for _, rec := range trainRecords(t, dir) {
			out = append(out, rec.Reward)
		}
		return out
	}
	got := rewards(dir)
	mean := func(x []float64) float64 {
		var s float64
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	first, last := mean(got[:6]), mean(got[len(got)-6:])
	t.Logf("mean reward: first steps %.3f, last steps %.3f; %v", first, last, res.PassAtK)
	if len(got) != 24 || !(last > first+0.3) || !slices.Equal(res.Rewards, got) || len(res.PassAt1) != 3 {
		t.Errorf("rewards over %d steps: %v", len(got), got)
	}
	for _, plot := range []string{"reward.png", "pass_at_1.png", "pass_at_k.png", "loss.png"} {
		if _, err := os.Stat(filepath.Join(dir, plot)); err != nil {
			t.Error(err)
		}
	}
	if len(res.PassAtK) != 4 || !strings.Contains(log.String(), "pass@4: ") || !strings.Contains(log.String(), "| reward: ") {
		t.Errorf("pass@k %v; log:\n%s", res.PassAtK, log.String())
	}

	stopped := filepath.Join(t.TempDir(), "rl")
	ctx, cancel := context.WithCancel(context.Background())
	r = rlRun(from, tok, stopped)
	r.Progress = func(step, _ int) {
		if step == 9 {
			cancel()
		}
	}
	if part, err := RL(ctx, r); err != nil || !part.Interrupted || part.Step != 9 {
		t.Fatalf("interrupted: %+v, %v", part, err)
	}
	r = rlRun(from, tok, stopped)
	r.Resume = true
	if _, err := RL(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rewards(stopped), got) {
		t.Errorf("rewards resumed %v, straight %v", rewards(stopped), got)
	}
	a, _ := checkpoint.Load(dir, 24, true)
	b, _ := checkpoint.Load(stopped, 24, true)
	for name, w := range a.Weights {
		if !slices.Equal(w, b.Weights[name]) {
			t.Fatalf("%s differs between the straight and the resumed run", name)
		}
	}
}

// failingTask is a task whose example at fail errors once, as a damaged file would.
type failingTask struct {
	tasks.Task
	fail   int
	failed bool
}

func (f *failingTask) Example(i int) (tasks.Example, error) {
	if i == f.fail && !f.failed {
		f.failed = true
		return tasks.Example{}, errors.New("damaged row")
	}
	return f.Task.Example(i)
}

// TestChatStageFailures: a step that fails midway is saved with the data where the step
// began, so that the resumed run equals the straight one bit for bit; a run that fails
// before its first step saves nothing; a resume on other conversations is refused.
func TestChatStageFailures(t *testing.T) {
	base, tok := baseCheckpoint(t)
	straight := filepath.Join(t.TempDir(), "sft")
	res, err := SFT(context.Background(), chatRun(base, tok, straight, SFTStage))
	if err != nil {
		t.Fatal(err)
	}
	failed := filepath.Join(t.TempDir(), "sft")
	r := chatRun(base, tok, failed, SFTStage)
	r.Train = &failingTask{Task: r.Train, fail: 41} // in step 10, of four conversations a step
	if _, err := SFT(context.Background(), r); err == nil || !strings.Contains(err.Error(), "step 10") {
		t.Fatalf("a damaged conversation: %v", err)
	}
	r = chatRun(base, tok, failed, SFTStage)
	r.Resume = true
	if _, err := SFT(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	a, _ := checkpoint.Load(straight, res.Step, false)
	b, err := checkpoint.Load(failed, res.Step, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range a.Weights {
		if !slices.Equal(w, b.Weights[name]) {
			t.Fatalf("%s differs between the straight run and the one resumed after its failure", name)
		}
	}

	early := filepath.Join(t.TempDir(), "mid")
	r = chatRun(base, tok, early, MidStage)
	r.Val = &failingTask{Task: r.Val, fail: 0}
	if _, err := Mid(context.Background(), r); err == nil || !strings.Contains(err.Error(), "nothing was trained") {
		t.Errorf("a failure before the first step: %v", err)
	}
	if steps, _ := checkpoint.Steps(early); len(steps) != 0 {
		t.Errorf("a run that trained nothing saved steps %v", steps)
	}

	r = chatRun(base, tok, straight, SFTStage)
	r.Resume, r.Train = true, tasks.Arithmetic(140, 1)
	if _, err := SFT(context.Background(), r); err == nil || !strings.Contains(err.Error(), "the datasets changed") {
		t.Errorf("a resume on other conversations: %v", err)
	}
}

// TestStagesOnTheDevice runs a few steps of SFT and of RL (rollouts, their scoring and the
// weighted loss) on a device engine, hostdevice, whose memory the host reaches only
// through its copies, and on the CPU engine: the same losses and rewards.
func TestStagesOnTheDevice(t *testing.T) {
	from, tok := baseCheckpoint(t)
	records := func(engine backend.Backend, st Stage) []Record {
		dir := filepath.Join(t.TempDir(), st.String())
		r := chatRun(from, tok, dir, st)
		if st == RLStage {
			r = rlRun(from, tok, dir)
		}
		r.Engine, r.Settings.NumIterations = engine, 6
		if _, err := stageRun(context.Background(), r, st); err != nil {
			t.Fatalf("%v on %s: %v", st, engine.Name(), err)
		}
		return trainRecords(t, dir)
	}
	for _, st := range []Stage{SFTStage, RLStage} {
		dev := hostdevice.New(nil)
		got, want := records(dev, st), records(cpubackend.New(nil), st)
		if len(got) != 6 || len(want) != 6 {
			t.Fatalf("%v: %d steps on the device, %d on the CPU", st, len(got), len(want))
		}
		if calls := dev.Calls(); st == RLStage && (calls["StoreKV"] == 0 || calls["AttentionCached"] == 0) {
			t.Errorf("rl: the rollouts did not decode on the device: %v", calls)
		}
		for i := range want {
			if math.Abs(got[i].Loss-want[i].Loss) > 1e-4*math.Abs(want[i].Loss) || got[i].Reward != want[i].Reward {
				t.Errorf("%v step %d: loss %v, reward %v on the device; %v, %v on the CPU", st, i, got[i].Loss, got[i].Reward, want[i].Loss, want[i].Reward)
			}
		}
	}
}
