//go:build linux || darwin

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gochat/checkpoint"
	"gochat/graph"
	"gochat/internal/mpitest"
	"gochat/loader"
	"gochat/tasks"
	"gochat/tokenizer"
)

// The runs of TestTrainUnderMPI: d2 on rows of 64 tokens, 2 rows per micro-batch.
const (
	mpiRows = 2
	mpiSeq  = 64
)

// mpiTrain is a run of steps steps of micro micro-batches each (shared out among the
// ranks), evaluated and saved every every steps.
func mpiTrain(steps, micro, every int, tag string, more ...string) []string {
	return append([]string{"train", "base", "--depth", "2", "--max-seq-len", strconv.Itoa(mpiSeq),
		"--device-batch-size", strconv.Itoa(mpiRows), "--total-batch-size", strconv.Itoa(micro * mpiRows * mpiSeq),
		"--num-iterations", strconv.Itoa(steps), "--eval-every", strconv.Itoa(every), "--save-every", strconv.Itoa(every),
		"--eval-tokens", strconv.Itoa(4 * mpiRows * mpiSeq), "--sample-every", "0", "--dist-timeout", "20s",
		"--model-tag", tag}, more...)
}

// batchShards replaces home's shards by ones whose row groups each hold one document of
// exactly one micro-batch of tokens (its <|bos|> included), cut from Go's sources: then
// micro-batch k of one process is row group k, and the ranks' strides of row groups are
// the same micro-batches, shared out (rank r's j-th is row group r+2j).
func batchShards(t *testing.T, home string, train, val int) {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join(home, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	want := mpiRows*mpiSeq + 1 - 1 // the loader adds <|bos|>
	var docs []string
	files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "strings", "*.go"))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ids := tok.Encode(string(src))
		for start := 0; start+want <= len(ids) && len(docs) < train+val; start += want {
			text, err := tok.Decode(ids[start : start+want])
			if err == nil && len(tok.Encode(string(text))) == want { // a cut that encodes back to itself
				docs = append(docs, string(text))
			}
		}
	}
	if len(docs) < train+val {
		t.Fatalf("only %d documents of %d tokens in Go's strings package", len(docs), want)
	}
	data := filepath.Join(home, "base_data")
	old, _ := filepath.Glob(filepath.Join(data, "*.parquet"))
	for _, p := range old {
		os.Remove(p)
	}
	for i, part := range [][]string{docs[:train], docs[train : train+val]} {
		if err := loader.WriteShardGroups(filepath.Join(data, loader.ShardName(i)), part, 1); err != nil {
			t.Fatal(err)
		}
	}
}

// mpiHome is a fresh GOCHAT_HOME with batchShards' data for steps steps.
func mpiHome(t *testing.T, steps int) string {
	home := newHome(t)
	batchShards(t, home, 4*steps, 4*2)
	return home
}

// metricLines is the train and evaluation records of a run's metrics.jsonl.
type metricLine struct {
	Kind   string  `json:"kind"`
	Step   int     `json:"step"`
	Loss   float64 `json:"loss"`
	ValBPB float64 `json:"val_bpb"`
}

func metricLines(t *testing.T, dir string) []metricLine {
	var out []metricLine
	for _, m := range metrics[metricLine](t, dir) {
		if m.Kind == "train" || m.Kind == "eval" {
			out = append(out, m)
		}
	}
	return out
}

// metrics decodes each line of the metrics.jsonl in a run's folder dir as a T.
func metrics[T any](t *testing.T, dir string) []T {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m T
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// mpiGochat is mpirun starting np ranks of the binary in home.
func mpiGochat(t *testing.T, ctx context.Context, home string, np int, args ...string) *exec.Cmd {
	cmd := mpitest.Command(t, ctx, np, binary, args...)
	cmd.Env = append(cmd.Env, "GOCHAT_HOME="+home)
	return cmd
}

// TestTrainUnderMPI: `mpirun -np 2 gochat train base` trains as one process does with the
// same total batch through accumulation.
//
// With one micro-batch per rank against two in one process the runs are the same byte
// for byte (weights, optimizer state, losses, bpb): the reduction adds the ranks'
// gradients as the accumulation adds the micro-batches' (a+b) and scales the sum by the
// same 1/2. So is `mpirun -np 1` against one process.
//
// With two micro-batches per rank against four, the gradients are added in another order,
// (g0+g2)+(g1+g3) against ((g0+g1)+g2)+g3: a few roundings of 1e-7 relative. The losses and
// bpb agree within 1e-5 relative. Each tensor's weights differ by an RMS under 1e-4 of
// how far the tensor moved over the last half of the run: measured 4e-6 to 1.3e-5 for
// Muon's matrices, 5e-7 for the embedding (2e-6 on another machine), where a rank reading
// another's micro-batches makes it a quarter and more. The bound is relative because the
// tensors move by amounts three orders apart (the embedding, AdamW's at a high rate, by
// 0.5 RMS; the matrices by 4e-3), and the difference follows. No bound holds for the
// largest difference: AdamW divides by √v, so an entry whose gradient nearly cancels over
// the micro-batches moves by an amount that rounding sets (2e-5 on one machine, 2e-4 on
// another).
//
// The job interrupted with Ctrl-C and resumed ends as it does run straight, byte for byte;
// resuming it in one process is refused.
func TestTrainUnderMPI(t *testing.T) {
	const steps, longer = 8, 60 // the compared runs; the interrupted one, long enough to interrupt
	home := mpiHome(t, longer)
	ckpt := func(tag string) string { return filepath.Join(home, "base_checkpoints", tag) }
	final := func(tag string, step int) string {
		return filepath.Join(ckpt(tag), fmt.Sprintf("model_%06d.safetensors", step))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mpi := func(np int, args ...string) string {
		t.Helper()
		out, err := mpiGochat(t, ctx, home, np, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("mpirun -np %d: %v\n%s", np, err, out)
		}
		return string(out)
	}
	single := func(args ...string) {
		t.Helper()
		if _, stderr, err := inHome(t, home, args...); err != nil {
			t.Fatalf("one process: %v %s", err, stderr)
		}
	}

	single(mpiTrain(steps, 2, 4, "single2")...)
	out := mpi(2, mpiTrain(steps, 2, 4, "ranks2")...)
	if n := strings.Count(out, "step 00008/00008"); n != 1 {
		t.Errorf("the job printed the last step %d times, want once (rank 0 alone):\n%s", n, out)
	}
	mpi(1, mpiTrain(steps, 2, 4, "alone2")...)
	for _, tag := range []string{"ranks2", "alone2"} {
		for _, f := range []string{"model_000008.safetensors", "optim_000008.safetensors"} {
			if readFile(t, filepath.Join(ckpt("single2"), f)) != readFile(t, filepath.Join(ckpt(tag), f)) {
				t.Errorf("%s: %s differs from one process's", tag, f)
			}
		}
		if one, got := metricLines(t, ckpt("single2")), metricLines(t, ckpt(tag)); len(one) != steps+3 || !slices.Equal(one, got) {
			t.Errorf("%s: losses and bpb\n%v, one process's\n%v", tag, got, one)
		}
	}

	single(mpiTrain(steps, 4, 4, "single4")...)
	mpi(2, mpiTrain(steps, 4, 4, "ranks4")...)
	one, ranks := metricLines(t, ckpt("single4")), metricLines(t, ckpt("ranks4"))
	if len(one) != steps+3 || len(ranks) != len(one) {
		t.Fatalf("%d records in one process, %d under mpirun", len(one), len(ranks))
	}
	for i, s := range one {
		r := ranks[i]
		if r.Kind != s.Kind || r.Step != s.Step || math.Abs(r.Loss-s.Loss) > 1e-5*s.Loss || math.Abs(r.ValBPB-s.ValBPB) > 1e-5*s.ValBPB {
			t.Errorf("record %d: %+v under mpirun, %+v in one process", i, r, s)
		}
	}
	closeWeights(t, final("single4", steps/2), final("single4", steps), final("ranks4", steps), 1e-4)

	// Ctrl-C of the whole job: the ranks agree to stop, rank 0 saves, and the job resumed
	// on two ranks ends where the straight one does.
	mpi(2, mpiTrain(longer, 4, 10, "straight")...)
	// The signal goes when the first checkpoint is on disk: mpirun passes the ranks' output
	// on in bursts, too late to time it by.
	cmd := mpiGochat(t, ctx, home, 2, mpiTrain(longer, 4, 10, "stopped")...)
	done, log := startUntil(t, cmd, final("stopped", 10))
	cmd.Process.Signal(syscall.SIGINT)
	if err := <-done; !strings.Contains(log.String(), "interrupted at step") { // mpirun itself exits 1 when interrupted
		t.Fatalf("the interrupted job: %v\n%s", err, log.String())
	}
	stoppedAt, err := checkpoint.LastStep(ckpt("stopped"))
	if err != nil || stoppedAt >= longer {
		t.Fatalf("the job interrupted saved step %d of %d (%v):\n%s", stoppedAt, longer, err, log.String())
	}
	if _, err := checkpoint.Load(ckpt("stopped"), stoppedAt, true); err != nil {
		t.Fatalf("the checkpoint of the interrupt: %v", err)
	}
	if _, stderr, err := inHome(t, home, mpiTrain(longer, 4, 10, "stopped", "--resume")...); err == nil || !strings.Contains(stderr, "ran on 2 processes, this is 1") {
		t.Errorf("resuming a 2-rank run in one process: %v %s", err, stderr)
	}
	mpi(2, mpiTrain(longer, 4, 10, "stopped", "--resume")...)
	if readFile(t, final("straight", longer)) != readFile(t, final("stopped", longer)) {
		t.Error("the job interrupted and resumed ends with other weights than the straight job")
	}
}

// TestMPIRankFailures: a rank killed, or one that stops answering, ends the job with a
// message that says which, within the --dist-timeout of the ones left waiting for it; the
// newest checkpoint on disk is whole, and the job resumes from it.
func TestMPIRankFailures(t *testing.T) {
	const steps = 60
	home := mpiHome(t, steps)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, c := range []struct {
		how  syscall.Signal
		want string
	}{
		{syscall.SIGKILL, "exited on signal 9"},                                          // mpirun's notice
		{syscall.SIGSTOP, "waited 3s for the other ranks: one of them stopped or hangs"}, // the watchdog's
	} {
		tag := strings.ToLower(c.how.String()[:4])
		dir := filepath.Join(home, "base_checkpoints", tag)
		args := mpiTrain(steps, 4, 10, tag, "--dist-timeout", "3s")
		cmd := mpiGochat(t, ctx, home, 2, args...)
		done, log := startUntil(t, cmd, filepath.Join(dir, "model_000010.safetensors"))
		victim := rankPID(t, cmd.Process.Pid, 1)
		syscall.Kill(victim, c.how)
		err := <-done
		if err == nil || !strings.Contains(log.String(), c.want) {
			t.Errorf("%s: rank 1 of the job: %v, want an error saying %q:\n%s", tag, err, c.want, log.String())
		}
		syscall.Kill(victim, syscall.SIGKILL) // in case mpirun left it stopped
		last, err := checkpoint.LastStep(dir)
		if err == nil {
			_, err = checkpoint.Load(dir, last, true)
		}
		if err != nil || last >= steps {
			t.Fatalf("%s: the newest checkpoint, step %d: %v", tag, last, err)
		}
		if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(tmp) > 0 {
			t.Errorf("%s: temporary files left: %v", tag, tmp)
		}
		if out, err := mpiGochat(t, ctx, home, 2, append(args, "--resume")...).CombinedOutput(); err != nil || !strings.Contains(string(out), fmt.Sprintf("step %05d/%05d", steps, steps)) {
			t.Errorf("%s: resuming from step %d: %v\n%s", tag, last, err, out)
		}
	}
}

// startUntil starts cmd, its output gathered in log, and returns once path exists (the
// job's first checkpoint, say); done receives the job's end.
func startUntil(t *testing.T, cmd *exec.Cmd, path string) (done <-chan error, log *strings.Builder) {
	t.Helper()
	log = &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	for {
		select {
		case err := <-ended:
			t.Fatalf("%v ended before %s was written: %v\n%s", cmd.Args, path, err, log.String())
		case <-time.After(5 * time.Millisecond):
			if _, err := os.Stat(path); err == nil {
				return ended, log
			}
		}
	}
}

// rankPID is the process id of rank of the job mpirun (process mpirun) runs on this
// machine: one of its children, whose environment names its rank.
func rankPID(t *testing.T, mpirun, rank int) int {
	t.Helper()
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", mpirun, mpirun))
	if err != nil {
		t.Skipf("this system does not list a process's children: %v", err)
	}
	for _, f := range strings.Fields(string(children)) {
		pid, _ := strconv.Atoi(f)
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if slices.Contains(strings.Split(string(env), "\x00"), "OMPI_COMM_WORLD_RANK="+strconv.Itoa(rank)) {
			return pid
		}
	}
	t.Fatalf("no child of mpirun (%s) is rank %d", children, rank)
	return 0
}

// readFile is the contents of path.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// closeWeights fails unless every tensor in got differs from its namesake in want by an
// RMS under rel times the RMS of how far want moved since before (an earlier checkpoint
// of the same run); it logs each tensor's differences.
func closeWeights(t *testing.T, beforePath, wantPath, gotPath string, rel float64) {
	t.Helper()
	read := func(path string) map[string][]float32 {
		w, err := graph.ReadWeights(path)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	before, want, got := read(beforePath), read(wantPath), read(gotPath)
	rms := func(a, b []float32) (root, most float64) {
		squares := 0.0
		for i := range a {
			d := math.Abs(float64(a[i] - b[i]))
			squares += d * d
			most = max(most, d)
		}
		return math.Sqrt(squares / float64(len(a))), most
	}
	for name, w := range want {
		g, b := got[name], before[name]
		if len(g) != len(w) || len(b) != len(w) {
			t.Fatalf("%s: %d and %d values, want %d", name, len(g), len(b), len(w))
		}
		diff, most := rms(w, g)
		moved, _ := rms(w, b)
		t.Logf("%s: RMS difference %.3g (%.2g of its move, %.3g), largest %.3g", name, diff, diff/moved, moved, most)
		if !(diff <= rel*moved) {
			t.Errorf("%s: RMS difference %.3g, want under %.2g of its move since %s (%.3g)", name, diff, rel, filepath.Base(beforePath), moved)
		}
	}
}

// TestNprocPerNodeOne: `gochat train base --nproc-per-node 1` on the CUDA engine, one
// process started by gochat's launcher and joined to a group of one through NCCL, trains
// as the plain command does: the sharded step over one rank owns every parameter, and
// NCCL's sum over one rank is the identity. Not byte for byte as on the CPU: the CUDA
// engine adds the embedding's and attention's gradients up with atomic additions, whose
// order varies from run to run, so two plain runs differ too (on the H200 machine, from
// the fifth step, in the eighth digit of the losses). The bounds are TestTrainUnderMPI's
// for a different summation order: losses and bpb within 1e-5 relative, each tensor's RMS
// difference under 1e-4 of its move over the run's second half; the test logs the same
// figures for two plain runs beside them. Skipped without a GPU unless GOCHAT_REQUIRE_CUDA
// is set; run on the GPU machine with a cross-compiled test binary and GOCHAT_TEST_BINARY.
func TestNprocPerNodeOne(t *testing.T) {
	const steps = 8
	home := mpiHome(t, steps)
	ckpt := func(tag string) string { return filepath.Join(home, "base_checkpoints", tag) }
	final := func(tag string, step int) string {
		return filepath.Join(ckpt(tag), fmt.Sprintf("model_%06d.safetensors", step))
	}
	run := func(tag string, more ...string) (string, error) {
		_, stderr, err := inHome(t, home, mpiTrain(steps, 2, 4, tag, append([]string{"--engine", "cuda"}, more...)...)...)
		return stderr, err
	}
	if stderr, err := run("plain"); err != nil {
		if os.Getenv("GOCHAT_REQUIRE_CUDA") == "" && strings.Contains(stderr, "--engine cuda: ") {
			t.Skipf("no CUDA engine here: %s", stderr)
		}
		t.Fatalf("plain run: %v %s", err, stderr)
	}
	for _, tag := range []string{"again", "launched"} {
		var more []string
		if tag == "launched" {
			more = []string{"--nproc-per-node", "1"}
		}
		if stderr, err := run(tag, more...); err != nil {
			t.Fatalf("%s: %v %s", tag, err, stderr)
		}
		plain, got := metricLines(t, ckpt("plain")), metricLines(t, ckpt(tag))
		if len(plain) != steps+3 || len(got) != len(plain) {
			t.Fatalf("%s: %d records, the plain run %d", tag, len(got), len(plain))
		}
		for i, p := range plain {
			g := got[i]
			if g.Kind != p.Kind || g.Step != p.Step || math.Abs(g.Loss-p.Loss) > 1e-5*p.Loss || math.Abs(g.ValBPB-p.ValBPB) > 1e-5*p.ValBPB {
				t.Errorf("%s, record %d: %+v, the plain run's %+v", tag, i, g, p)
			}
		}
		t.Logf("%s against the plain run:", tag)
		closeWeights(t, final("plain", steps/2), final("plain", steps), final(tag, steps), 1e-4)
	}
}

// TestChatStagesUnderMPI: SFT and RL under `mpirun -np 2` train as one process does with
// the same step through accumulation. SFT's ranks take every other conversation (rank r
// the conversations r, r+2, …, as nanochat's loader does), so with one conversation a
// micro-batch a step of four is the same four conversations, their gradients added in
// another order (at the full learning rate, so that the weights move well beyond
// rounding). RL's ranks share a step's problems, each sampled with the seed of its problem
// and pass, so the ranks sample the replies one process samples; its model is
// chatEvalHome's, whose replies sampled at temperature 1.5 are right about half the time,
// so that the advantages and the updates are not zero (its block matrices, zero, stay so;
// the embedding and lm_head move, and here equal one process's byte for byte). The bounds
// are TestTrainUnderMPI's for another summation order (losses and evaluations 1e-5
// relative, weights 1e-4 of their move over the run's second half; SFT's matrices measured
// 3e-5 to 5e-5). Mid-training runs too, its ranks striding the conversations into packed
// rows of their own (nanochat's), so its rows differ from one process's and only its run
// is checked.
func TestChatStagesUnderMPI(t *testing.T) {
	const steps = 6
	withRL := func(t *testing.T) string {
		home, _ := chatEvalHome(t)
		rows := make([]tasks.GSM8KFile, 2*steps) // a step of two problems each
		for i := range rows {
			rows[i] = tasks.GSM8KFile{Question: fmt.Sprintf("What is 6 times 7, problem %d?", i), Answer: "<<6*7=42>>42\n#### 42"}
		}
		rows[3].Answer, rows[6].Answer = "#### 41", "#### 41"
		writeSplit(t, home, "gsm8k", "train", rows)
		return home
	}
	stages := []struct {
		folder string
		home   func(*testing.T) string
		args   []string
	}{
		{"chatsft_checkpoints", chatStagesHome, []string{"train", "sft", "-i", "base", "-g", "d1", "--max-seq-len", "96", "--device-batch-size", "1",
			"--target-examples-per-step", "4", "--init-lr-frac", "1", "--num-iterations", strconv.Itoa(steps), "--eval-every", "3", "--save-every", "3",
			"--eval-steps", "2", "--eval-metrics-every", "0", "--eval-metrics-max-problems", "4"}},
		{"chatrl_checkpoints", withRL, []string{"train", "rl", "-i", "sft", "-g", "d1", "--max-seq-len", "96", "--device-batch-size", "2",
			"--examples-per-step", "2", "--num-samples", "2", "--max-new-tokens", "24", "--num-iterations", strconv.Itoa(steps),
			"--eval-every", "3", "--save-every", "3", "--eval-examples", "2", "--temperature", "1.5", "--init-lr-frac", "1"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, s := range stages {
		one, ranks := s.home(t), s.home(t)
		if _, stderr, err := inHome(t, one, s.args...); err != nil {
			t.Fatalf("%s, one process: %v %s", s.args[1], err, stderr)
		}
		if out, err := mpiGochat(t, ctx, ranks, 2, append(s.args, "--dist-timeout", "20s")...).CombinedOutput(); err != nil {
			t.Fatalf("%s under mpirun: %v\n%s", s.args[1], err, out)
		}
		dir := func(home string) string { return filepath.Join(home, s.folder, "d1") }
		a, b := metrics[chatRecord](t, dir(one)), metrics[chatRecord](t, dir(ranks))
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("%s: %d records in one process, %d under mpirun", s.args[1], len(a), len(b))
		}
		for i := range a {
			if !a[i].close(b[i]) {
				t.Errorf("%s, record %d: %+v under mpirun, %+v in one process", s.args[1], i, b[i], a[i])
			}
		}
		model := func(home string, step int) string {
			return filepath.Join(dir(home), fmt.Sprintf("model_%06d.safetensors", step))
		}
		if readFile(t, model(one, steps/2)) == readFile(t, model(one, steps)) {
			t.Fatalf("%s: the weights did not move over the run's second half", s.args[1])
		}
		t.Logf("%s:", s.args[1])
		closeWeights(t, model(one, steps/2), model(one, steps), model(ranks, steps), 1e-4)
		if s.args[1] == "sft" {
			mid := []string{"train", "mid", "-i", "base", "-g", "d1", "--max-seq-len", "64", "--device-batch-size", "1", "--total-batch-size", "128",
				"--eval-every", "10", "--eval-tokens", "256", "--dist-timeout", "20s"}
			out, err := mpiGochat(t, ctx, ranks, 2, mid...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "minimum validation bpb") {
				t.Fatalf("mid under mpirun: %v\n%s", err, out)
			}
			if last, err := checkpoint.LastStep(filepath.Join(ranks, "mid_checkpoints", "d1")); err != nil || last <= 0 {
				t.Errorf("mid under mpirun saved step %d: %v", last, err)
			}
		}
	}
}

// chatRecord is a chat stage's record in metrics.jsonl: a step's loss and mean reward, or
// an evaluation's validation loss or bpb and pass@k.
type chatRecord struct {
	Kind    string    `json:"kind"`
	Step    int       `json:"step"`
	Loss    float64   `json:"loss"`
	Reward  float64   `json:"reward"`
	ValLoss float64   `json:"val_loss"`
	ValBPB  float64   `json:"val_bpb"`
	PassAtK []float64 `json:"pass_at_k"`
}

// close reports whether r and o agree: the same record, its figures within 1e-5 relative.
func (r chatRecord) close(o chatRecord) bool {
	return r.Kind == o.Kind && r.Step == o.Step && close5(r.Loss, o.Loss) && close5(r.Reward, o.Reward) &&
		close5(r.ValLoss, o.ValLoss) && close5(r.ValBPB, o.ValBPB) && slices.Equal(r.PassAtK, o.PassAtK)
}

// close5 reports whether a and b agree within 1e-5 relative.
func close5(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Abs(a) }
