package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"gochat/checkpoint"
	"gochat/graph"
	"gochat/loader"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inHome runs the binary with GOCHAT_HOME set to home.
func inHome(t *testing.T, home string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runIn(t, binary, home, args...)
}

// runIn runs the binary bin with args in GOCHAT_HOME home.
func runIn(t *testing.T, bin, home string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// newHome packs Go's strings and bytes packages and trains a 400-token tokenizer in a
// fresh GOCHAT_HOME.
func newHome(t *testing.T) string {
	home := t.TempDir()
	src := filepath.Join(runtime.GOROOT(), "src")
	for _, args := range [][]string{
		{"data", "pack", "--include", "*.go", "--val-docs", "6", filepath.Join(src, "strings"), filepath.Join(src, "bytes")},
		{"tok", "train", "--vocab-size", "400"},
	} {
		if _, stderr, err := inHome(t, home, args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr)
		}
	}
	return home
}

// tinyTrain is a run of a few seconds: 150 steps of d2 on 4×64 tokens.
var tinyTrain = []string{"train", "base", "--depth", "2", "--max-seq-len", "64", "--device-batch-size", "4",
	"--total-batch-size", "256", "--num-iterations", "150", "--eval-every", "50", "--eval-tokens", "512", "--sample-every", "0"}

func smoothLosses(t *testing.T, dir string) []float64 {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Kind       string  `json:"kind"`
			SmoothLoss float64 `json:"smooth_loss"`
		}
		json.Unmarshal(sc.Bytes(), &r)
		if r.Kind == "train" {
			out = append(out, r.SmoothLoss)
		}
	}
	return out
}

// TestTrainBase: the binary trains, evaluates, samples and saves; a run stopped with
// Ctrl-C and resumed ends with the same weights, byte for byte, as one that ran straight.
func TestTrainBase(t *testing.T) {
	home := newHome(t)
	out, stderr, err := inHome(t, home, append(tinyTrain, "--model-tag", "straight", "--save-every", "100")...)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	for _, want := range []string{"number of iterations: 150", "step 00150/00150 (100.0%)", "validation bpb", "sample: \"The capital of France is",
		"minimum validation bpb", "waiting for data"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	straight := filepath.Join(home, "base_checkpoints", "straight")
	losses := smoothLosses(t, straight)
	if len(losses) != 150 || !(losses[149] < losses[0]-1) {
		t.Fatalf("%d losses, from %v to %v", len(losses), losses[0], losses[len(losses)-1])
	}
	for _, f := range []string{"model_000100.safetensors", "meta_000100.json", "model_000150.safetensors", "optim_000150.safetensors", "loss.png", "val_bpb.png"} {
		if _, err := os.Stat(filepath.Join(straight, f)); err != nil {
			t.Error(err)
		}
	}
	out, stderr, err = inHome(t, home, "eval", "bpb", "--model-tag", "straight", "--device-batch-size", "4", "--split-tokens", "1024")
	if err != nil || !strings.Contains(out, "train bpb: ") || !strings.Contains(out, "val bpb: ") || !strings.Contains(stderr, "activations planned, of the") {
		t.Fatalf("eval bpb: %v %s %s", err, out, stderr)
	}
	// int8 weights: the same batches scored within 1% of float32's bits per byte.
	q8, stderr, err := inHome(t, home, "eval", "bpb", "--model-tag", "straight", "--device-batch-size", "4", "--split-tokens", "1024", "--quantize", "int8")
	if err != nil {
		t.Fatalf("eval bpb --quantize int8: %v %s", err, stderr)
	}
	valBPB := func(out string) float64 {
		i := strings.Index(out, "val bpb: ")
		if i < 0 {
			t.Fatalf("no val bpb in %q", out)
		}
		var v float64
		fmt.Sscanf(out[i+len("val bpb: "):], "%g", &v)
		return v
	}
	if a, b := valBPB(out), valBPB(q8); !(math.Abs(b/a-1) < 0.01) || a == b {
		t.Errorf("val bpb %g with int8 weights, %g with float32: want a change under 1%%", b, a)
	}
	// The step's int8 file, when checkpoint quantize wrote one, scores as quantizing on load.
	if _, stderr, err := inHome(t, home, "checkpoint", "quantize", "-g", "straight"); err != nil {
		t.Fatalf("checkpoint quantize: %v %s", err, stderr)
	}
	last, _ := checkpoint.LastStep(straight)
	f32 := filepath.Join(straight, fmt.Sprintf("model_%06d.safetensors", last))
	if err := os.Rename(f32, f32+".aside"); err != nil {
		t.Fatal(err)
	}
	fromFile, stderr, err := inHome(t, home, "eval", "bpb", "--model-tag", "straight", "--device-batch-size", "4", "--split-tokens", "1024", "--quantize", "int8")
	if err != nil || !strings.Contains(fromFile, "(int8 weights)") || valBPB(fromFile) != valBPB(q8) {
		t.Errorf("eval bpb of the int8 file: %v %s %s; quantized on load:\n%s", err, fromFile, stderr, q8)
	}
	if err := os.Rename(f32+".aside", f32); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := inHome(t, home, "sample", "-g", "straight", "--quantize", "int4", "hi"); err == nil || !strings.Contains(stderr, `want none or int8`) {
		t.Errorf("--quantize int4: %v %s", err, stderr)
	}
	tight := exec.Command(binary, "eval", "bpb", "--model-tag", "straight", "--device-batch-size", "4", "--split-tokens", "1024")
	tight.Env = append(os.Environ(), "GOCHAT_HOME="+home, "GOCHAT_MEMORY_LIMIT=64KiB")
	if both, err := tight.CombinedOutput(); err == nil || !strings.Contains(string(both), "more than 90% of the 0.1 MiB") || !strings.Contains(string(both), "lower --device-batch-size") {
		t.Errorf("eval bpb over the limit: %v %s", err, both)
	}

	// The same run, interrupted after step 5 and resumed.
	args := append(tinyTrain, "--model-tag", "stopped")
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
	pipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "step 00005/") {
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(log.String(), "interrupted at step") {
		t.Fatalf("interrupted run: %v\n%s", err, log.String())
	}
	stopped := filepath.Join(home, "base_checkpoints", "stopped")
	if _, err := os.Stat(filepath.Join(stopped, "meta_000150.json")); err == nil {
		t.Fatal("the run finished before the interrupt; the test needs a longer run")
	}
	if _, stderr, err := inHome(t, home, append(args, "--resume")...); err != nil {
		t.Fatalf("resume: %v %s", err, stderr)
	}
	a, _ := os.ReadFile(filepath.Join(straight, "model_000150.safetensors"))
	b, _ := os.ReadFile(filepath.Join(stopped, "model_000150.safetensors"))
	if len(a) == 0 || string(a) != string(b) {
		t.Error("the resumed run's weights differ from the straight run's")
	}
	if got := smoothLosses(t, stopped); len(got) != 150 || got[149] != losses[149] {
		t.Errorf("resumed run: %d losses, last %v, want %v", len(got), got[len(got)-1], losses[149])
	}
}

func TestTrainBaseErrors(t *testing.T) {
	home := newHome(t)
	if _, stderr, err := inHome(t, home, append(tinyTrain, "--num-iterations", "3")...); err != nil {
		t.Fatal(stderr)
	}
	dir := filepath.Join(home, "base_checkpoints", "d2")
	model := filepath.Join(dir, "model_000003.safetensors")
	raw, _ := os.ReadFile(model)
	os.WriteFile(model, raw[:len(raw)-100], 0o644)
	empty := t.TempDir()
	// A run whose weights went NaN: what evaluation must refuse.
	nan := filepath.Join(home, "base_checkpoints", "nan")
	if _, stderr, err := inHome(t, home, append(tinyTrain, "--num-iterations", "1", "--model-tag", "nan")...); err != nil {
		t.Fatal(stderr)
	}
	w, err := graph.ReadWeights(filepath.Join(nan, "model_000001.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	w["lm_head.weight"][0] = float32(math.NaN())
	meta, _ := checkpoint.ReadMeta(nan, 1)
	if err := meta.ModelConfig.WriteWeights(filepath.Join(nan, "model_000001.safetensors"), w); err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(t.TempDir(), "one.txt")
	os.WriteFile(one, []byte("a single document"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(tinyTrain, "--num-iterations", "3", "--resume"), "model_000003.safetensors"},
		{append(tinyTrain, "--num-iterations", "3", "--resume", "--model-tag", "none"), "no saved steps"},
		{append(tinyTrain, "--total-batch-size", "1000"), "not a multiple"},
		{append(tinyTrain, "--tokenizer", empty), "gochat tok train"},
		{append(tinyTrain, "--data", empty), "no shards"},
		{append(tinyTrain, "--eval-every", "-1"), "--eval-every"},
		{[]string{"eval", "bpb", "--model-tag", "d2", "--step", "9"}, "no step 9"},
		{[]string{"eval", "bpb", "--checkpoints", empty}, "no checkpoints"},
		{[]string{"eval", "bpb", "--model-tag", "d2", "--step", "9"}, "its steps: 3"},
		{[]string{"chat", "-i", "base", "-g", "nosuchtag", "-p", "hi"}, "the runs there: d2"},
		{[]string{"data", "pack", one, "--out", empty}, "flags come before arguments: gochat data pack --out " + empty + " " + one},
		{[]string{"data", "pack", "--out", empty, one}, "at least two"},
		{[]string{"train", "bsae"}, "did you mean `gochat train base`?"},
		{[]string{"trian"}, "did you mean `gochat train`?"},
		{[]string{"train", "base", "--depht", "3"}, "did you mean --depth?"},
		{[]string{"train", "base", "--depth", "abc"}, "`gochat train base --help` lists the flags"},
		{append(tinyTrain, "--matrix-lr", "NaN"), "matrix_lr is NaN"},
		{append(tinyTrain, "--grad-clip", "-1"), "grad_clip is -1"},
		{append(tinyTrain, "--time-budget", "-5m"), "time_budget is -300"},
		{append(tinyTrain, "--model-tag", "../outside"), "not a plain folder name"},
		{[]string{"eval", "bpb", "--model-tag", "../d2"}, "not a plain folder name"},
		{[]string{"eval", "bpb", "--model-tag", "nan"}, "NaN or infinite"},
		{append(tinyTrain, "--depth", "1000"), "optimizer state alone"},
		{append(tinyTrain, "--device-batch-size", "many"), "want a positive number of rows or auto"},
		{[]string{"sample", "-g", "d2", "-n", "100000", "hi"}, "--num-samples must lie in 1..1024"},
		{append(tinyTrain, "--nproc-per-node", "2", "--engine", "cpu"), "engine has no collective library; start CPU ranks with mpirun"},
		{append(tinyTrain, "--nproc-per-node", "-1"), "--nproc-per-node must be positive"},
	} {
		_, stderr, err := inHome(t, home, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "panic") {
			t.Errorf("%v: %v, stderr %q, want %q", c.args[len(c.args)-2:], err, stderr, c.want)
		}
	}
}

// TestDemo runs the README's command in a reduced form (a few of Go's files, a tiny model,
// seconds of training) through the same code path: pack, tokenizer, training, report. It
// runs again in a binary built with -tags hostdevice, whose engine is a device with memory
// of its own (internal/hostdevice): every stage, evaluation and suggested command must
// reach the device's memory only through its copies, as on a GPU, where a stray read of the
// host faults.
func TestDemo(t *testing.T) {
	t.Run("cpu", func(t *testing.T) { demo(t, binary) })
	t.Run("device", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "gochat-hostdevice")
		if out, err := exec.Command("go", "build", "-tags", "hostdevice", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		demo(t, bin)
	})
}

func demo(t *testing.T, bin string) {
	home := t.TempDir()
	args := []string{"demo", "--time", "4s", "--depth", "1", "--max-seq-len", "32", "--device-batch-size", "4",
		"--vocab-size", "300", "--include", "strings*.go", "--val-docs", "4", "--evals", "3", "--problems", "40"}
	out, stderr, err := runIn(t, bin, home, args...)
	if err != nil {
		t.Fatalf("%v: %s\n%s", err, stderr, out)
	}
	for _, want := range []string{"packing Go's source tree", "trained 300 tokens", "steps in all", "validation bpb", "report card",
		"== mid-training", "== SFT", "== RL on the arithmetic", "| reward: ", "pass@4: ", "\nRL: ", "> What is 47 + 38?"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	raw, err := os.ReadFile(filepath.Join(home, "report", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Base training", "| validation bpb |", "![base-training-loss](base-training-loss.png)", "The capital of France is",
		"func (b *Buffer) Len() int {", "## Mid-training", "## SFT", "## RL", "| mean reward |", "## Talking to the SFT model", "> What does the Go package net/http do?"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, f := range []string{"report/base-training-loss.png", "report/base-training-val_bpb.png", "report/chat-rl-reward.png",
		"base_checkpoints/demo/metrics.jsonl", "mid_checkpoints/demo", "chatsft_checkpoints/demo", "chatrl_checkpoints/demo"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			t.Error(err)
		}
	}
	// Every command the demo suggests works as printed; FineWeb's download needs the internet.
	var suggested int
	for _, line := range strings.Split(out, "\n") {
		words := shellWords(strings.TrimSpace(strings.Split(line, "#")[0]))
		if !strings.HasPrefix(line, "  ") || len(words) < 2 || words[0] != bin || words[1] == "data" {
			continue
		}
		suggested++
		cmd := exec.Command(bin, words[1:]...)
		cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
		if got, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", line, err, got)
		}
	}
	if suggested != 5 {
		t.Errorf("ran %d of the demo's suggestions, want 5:\n%s", suggested, out)
	}
	// A second demo reuses the shards and the tokenizer.
	if out, stderr, err = runIn(t, bin, home, args...); err != nil || !strings.Contains(out, "using the shards") || !strings.Contains(out, "using the tokenizer") {
		t.Errorf("second demo: %v %s %s", err, stderr, out)
	}
}

// TestCheckpointImportExport moves PyTorch's checkpoint (testdata/pt) into a gochat run
// and out again through the binary.
func TestCheckpointImportExport(t *testing.T) {
	home := t.TempDir()
	out, stderr, err := inHome(t, home, "checkpoint", "import", "../testdata/pt/d2")
	if err != nil || !strings.Contains(out, "imported step 6") {
		t.Fatalf("%v: %s %s", err, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(home, "base_checkpoints", "d2", "model_000006.safetensors")); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if out, stderr, err = inHome(t, home, "checkpoint", "export", "--out", dst); err != nil || !strings.Contains(out, "exported step 6") {
		t.Fatalf("%v: %s %s", err, out, stderr)
	}
	for _, f := range []string{"model_000006.pt", "meta_000006.json"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Error(err)
		}
	}
	if _, stderr, err := inHome(t, home, "checkpoint", "import", "--step", "9", "../testdata/pt/d2"); err == nil || !strings.Contains(stderr, "no step 9") {
		t.Errorf("missing step: %v %s", err, stderr)
	}
	if _, stderr, err := inHome(t, home, "checkpoint", "export"); err == nil || !strings.Contains(stderr, "out") {
		t.Errorf("export without --out: %v %s", err, stderr)
	}

	// The golden d2 run to transformers' layout and back, then sampled from.
	hf := filepath.Join(t.TempDir(), "hf")
	golden := []string{"--checkpoints", "../testdata/golden/core", "--model-tag", "model", "--tokenizer", "../testdata/golden/core/model/tokenizer"}
	if out, stderr, err := inHome(t, home, append(append([]string{"checkpoint", "export", "--format", "hf"}, golden...), "--out", hf)...); err != nil || !strings.Contains(out, "config.json") {
		t.Fatalf("export to hf: %v %s %s", err, out, stderr)
	}
	out, stderr, err = inHome(t, home, "checkpoint", "import", "--format", "hf", "-g", "fromhf", hf)
	tokDir := filepath.Join(home, "base_checkpoints", "fromhf", "tokenizer")
	if err != nil || !strings.Contains(out, "give --tokenizer "+tokDir) {
		t.Fatalf("import from hf: %v %s %s", err, out, stderr)
	}
	if err := os.CopyFS(filepath.Join(home, "base_checkpoints", "golden"), os.DirFS("../testdata/golden/core/model")); err != nil {
		t.Fatal(err)
	}
	want, stderr, err := inHome(t, home, "sample", "-t", "0", "-m", "12", "-g", "golden", "--tokenizer", "../testdata/golden/core/model/tokenizer", "package main")
	if err != nil {
		t.Fatalf("sampling the golden run: %v %s", err, stderr)
	}
	// int8 weights written beside the step are what --quantize int8 reads, the same as
	// quantizing on load.
	goldenTok := []string{"-g", "golden", "--tokenizer", "../testdata/golden/core/model/tokenizer", "-t", "0", "-m", "12", "--quantize", "int8", "package main"}
	onLoad, stderr, err := inHome(t, home, append([]string{"sample"}, goldenTok...)...)
	if err != nil {
		t.Fatalf("sample --quantize int8: %v %s", err, stderr)
	}
	core := func(json string) string { // eval core of the int8 model: CORE and every verdict
		t.Helper()
		if _, stderr, err := inHome(t, home, "eval", "core", "-g", "golden", "--tokenizer", "../testdata/golden/core/model/tokenizer",
			"--bundle", "../testdata/golden/core/bundle", "--quantize", "int8", "--json", filepath.Join(home, json)); err != nil {
			t.Fatalf("eval core --quantize int8: %v %s", err, stderr)
		}
		return readFile(t, filepath.Join(home, json))
	}
	coreOnLoad := core("onload.json")
	if out, stderr, err := inHome(t, home, "checkpoint", "quantize", "-g", "golden"); err != nil || !strings.Contains(out, "model_000400.int8.safetensors") {
		t.Fatalf("checkpoint quantize: %v %s %s", err, out, stderr)
	}
	os.Remove(filepath.Join(home, "base_checkpoints", "golden", "model_000400.safetensors")) // the int8 file alone must do
	if fromFile, stderr, err := inHome(t, home, append([]string{"sample"}, goldenTok...)...); err != nil || fromFile != onLoad {
		t.Errorf("the int8 file samples %q, quantizing on load %q (%v %s)", fromFile, onLoad, err, stderr)
	}
	if fromFile := core("fromfile.json"); fromFile != coreOnLoad {
		t.Errorf("eval core of the int8 file:\n%s\nquantizing on load:\n%s", fromFile, coreOnLoad)
	}
	got, stderr, err := inHome(t, home, "sample", "-t", "0", "-m", "12", "-g", "fromhf", "--tokenizer", tokDir, "package main")
	if err != nil || got != want || want == "" {
		t.Errorf("the imported model samples %q, the golden run %q (%v %s)", got, want, err, stderr)
	}
	if _, stderr, err := inHome(t, home, "checkpoint", "import", "--format", "hf", "-g", "fromhf", hf); err == nil || !strings.Contains(stderr, "holds a run already") {
		t.Errorf("a second import over the first: %v %s", err, stderr)
	}
	if _, stderr, err := inHome(t, home, "checkpoint", "export", "--format", "onnx", "--out", hf); err == nil || !strings.Contains(stderr, `want pt or hf`) {
		t.Errorf("a wrong --format: %v %s", err, stderr)
	}
}

// shellWords splits a command line as a shell would, for the single quotes gochat prints.
func shellWords(line string) []string {
	var words []string
	var word strings.Builder
	quoted, in := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				words, in = append(words, word.String()), false
				word.Reset()
			}
		default:
			word.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, word.String())
	}
	return words
}

// TestKillNineResumes kills a training run with SIGKILL at random moments, saves among
// them, and resumes it each time: after every kill the newest checkpoint loads whole, and
// the run, once finished, ends with the uninterrupted run's weights byte for byte.
func TestKillNineResumes(t *testing.T) {
	home := newHome(t)
	args := append(tinyTrain, "--save-every", "10")
	start := time.Now()
	if _, stderr, err := inHome(t, home, append(args, "--model-tag", "straight")...); err != nil {
		t.Fatalf("%v %s", err, stderr)
	}
	straightTime := time.Since(start)
	dir := filepath.Join(home, "base_checkpoints", "killed")
	r := rand.New(rand.NewPCG(9, 9))
	finished := false
	for kill := 0; kill < 6 && !finished; kill++ {
		run := append(args, "--model-tag", "killed")
		if steps, _ := checkpoint.Steps(dir); len(steps) > 0 {
			run = append(run, "--resume")
		}
		cmd := exec.Command(binary, run...)
		cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: %v", kill, err)
			}
			finished = true
		case <-time.After(time.Duration(r.Float64() * float64(straightTime))):
			cmd.Process.Kill()
			<-done
		}
		if steps, _ := checkpoint.Steps(dir); len(steps) > 0 {
			last := steps[len(steps)-1]
			if _, err := checkpoint.Load(dir, last, true); err != nil {
				t.Fatalf("after kill %d the newest checkpoint, step %d, does not load: %v", kill, last, err)
			}
		}
	}
	if !finished {
		resume := append(args, "--model-tag", "killed")
		if steps, _ := checkpoint.Steps(dir); len(steps) > 0 {
			resume = append(resume, "--resume")
		}
		if _, stderr, err := inHome(t, home, resume...); err != nil {
			t.Fatalf("the last resume: %v %s", err, stderr)
		}
	}
	a, _ := os.ReadFile(filepath.Join(home, "base_checkpoints", "straight", "model_000150.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "model_000150.safetensors"))
	if len(a) == 0 || string(a) != string(b) {
		t.Error("the run killed and resumed ends with other weights than the straight run")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestDamagedValidationShardStopsAtStart: a validation shard that cannot be read is found
// before the first step, also when the run evaluates only at its end.
func TestDamagedValidationShardStopsAtStart(t *testing.T) {
	home := newHome(t)
	_, val, err := loader.Split(filepath.Join(home, "base_data"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(val, []byte("PAR1 not really"), 0o644)
	out, stderr, err := inHome(t, home, append(tinyTrain, "--eval-every", "0", "--model-tag", "damaged")...)
	if err == nil || !strings.Contains(stderr, "validation shard") || strings.Contains(out, "step 00001/") {
		t.Fatalf("a damaged validation shard: %v\n%s\n%s", err, stderr, out)
	}
}

// TestTrainRecompute: a run that recomputes every block's activations ends with the same
// weights, byte for byte, as one that keeps them, and says which it planned; a wrong
// --recompute is one clear line.
func TestTrainRecompute(t *testing.T) {
	home := newHome(t)
	short := append(slices.Clone(tinyTrain[:len(tinyTrain)-8]), "--num-iterations", "10", "--eval-every", "0", "--eval-tokens", "512", "--sample-every", "0")
	var models [][]byte
	for _, rc := range []string{"none", "blocks"} {
		out, stderr, err := inHome(t, home, append(short, "--model-tag", rc, "--recompute", rc)...)
		if err != nil {
			t.Fatalf("%s: %v: %s", rc, err, stderr)
		}
		if !strings.Contains(out, "optimizer state") || !strings.Contains(out, "at 4 rows (recompute "+rc+")") {
			t.Errorf("%s: the output does not give the memory plan:\n%s", rc, out)
		}
		b, err := os.ReadFile(filepath.Join(home, "base_checkpoints", rc, "model_000010.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, b)
	}
	if !bytes.Equal(models[0], models[1]) {
		t.Error("the weights after 10 steps differ with recomputation")
	}
	_, stderr, err := inHome(t, home, append(short, "--model-tag", "bad", "--recompute", "half")...)
	if err == nil || !strings.Contains(stderr, `recompute "half": want none or blocks`) || strings.Contains(stderr, "goroutine") {
		t.Errorf("a wrong --recompute: %v %s", err, stderr)
	}
}

// TestTrainAutoBatch: --device-batch-size auto trains at the largest batch that fits the
// memory limit and says so; a limit that holds no step is refused in one line, before the
// run's folder is written.
func TestTrainAutoBatch(t *testing.T) {
	home := newHome(t)
	short := append(slices.Clone(tinyTrain[:len(tinyTrain)-8]), "--num-iterations", "2", "--eval-every", "0", "--eval-tokens", "256", "--sample-every", "0")
	short[slices.Index(short, "--device-batch-size")+1] = "auto"
	t.Setenv("GOCHAT_MEMORY_LIMIT", "64GiB")
	out, stderr, err := inHome(t, home, short...)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	// 256 tokens a step and 256 of evaluation: one micro-batch of 4 rows of 64.
	if !strings.Contains(out, "device batch size: 4 rows, the largest that fits") || !strings.Contains(out, "gradient accumulation steps: 1") {
		t.Errorf("the output does not give the batch it chose:\n%s", out)
	}
	if card, _, err := inHome(t, home, "report"); err != nil || !strings.Contains(readFile(t, filepath.Join(home, "report", "report.md")), "of 256 tokens (4 × 64)") {
		t.Errorf("the report card does not give the batch the run chose: %v %s\n%s", err, card, readFile(t, filepath.Join(home, "report", "report.md")))
	}
	t.Setenv("GOCHAT_MEMORY_LIMIT", "2MiB")
	t.Setenv("GOCHAT_BLAS", "go") // no notice of a missing system BLAS beside the one line
	_, stderr, err = inHome(t, home, append(short, "--model-tag", "small")...)
	if err == nil || !strings.Contains(stderr, "optimizer state alone, more than 90% of the 2.0 MiB") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("a limit below the model: %v %q", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(home, "base_checkpoints", "small")); !os.IsNotExist(err) {
		t.Errorf("a refused run made its folder: %v", err)
	}
}
