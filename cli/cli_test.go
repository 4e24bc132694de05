package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gochat/loader"
)

var binary string

// TestMain builds the real gochat binary once; the tests run it as a user would.
// GOCHAT_TEST_BINARY names one built beforehand instead, for a machine without Go (the
// GPU machine, which runs a cross-compiled test binary).
func TestMain(m *testing.M) {
	if os.Getenv(launchTestEnv) != "" { // a rank of TestSupervise: no binary to build
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "gochat-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gochat")
	os.Setenv("GOCHAT_HOME", filepath.Join(dir, "home")) // empty: defaults lead nowhere
	if prebuilt := os.Getenv("GOCHAT_TEST_BINARY"); prebuilt != "" {
		if binary, err = filepath.Abs(prebuilt); err != nil {
			panic(err)
		}
	} else if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func gochat(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

var small = []string{"--depth", "2", "--vocab-size", "300", "--max-seq-len", "24", "--device-batch-size", "2"}

func TestModelCommand(t *testing.T) {
	out, stderr, err := gochat(t, append([]string{"model"}, small...)...)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if first, last := stepLoss(t, out, 1), stepLoss(t, out, 10); !(last < first/2) {
		t.Errorf("ten optimizer steps took the loss from %v to %v, want it at least halved", first, last)
	}
	for _, want := range []string{
		"n_layer 2, n_embd 128, n_head 1, n_kv_head 1, head_dim 128, vocab_size 300",
		"loss: 5.70378", "(a fresh model must give ln 300 = 5.703782)",
		"tok/s",
		"step 10/10: loss",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestWeightsRoundTrip saves a model's weights and loads them back through the binary:
// the loaded model computes the same loss.
func TestWeightsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	out1, stderr, err := gochat(t, append([]string{"model", "--seed", "3", "--steps", "0", "--save", path}, small...)...)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	out2, stderr, err := gochat(t, append([]string{"model", "--steps", "0", "--load", path}, small...)...)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if l1, l2 := lineWith(out1, "loss:"), lineWith(out2, "loss:"); !strings.HasPrefix(l1, l2) || l2 == "" {
		t.Errorf("saved %q, loaded %q", l1, l2)
	}
}

// stepLoss reads the loss printed for a training step.
func stepLoss(t *testing.T, out string, step int) float64 {
	t.Helper()
	var loss float64
	for _, l := range strings.Split(out, "\n") {
		var n, total int
		if _, err := fmt.Sscanf(l, "step %d/%d: loss %f", &n, &total, &loss); err == nil && n == step {
			return loss
		}
	}
	t.Fatalf("no loss for step %d in:\n%s", step, out)
	return 0
}

func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(strings.SplitN(l, "(", 2)[0])
		}
	}
	return ""
}

// TestUserErrors: bad flags and bad files give one clear line and a failing exit status,
// never a panic.
func TestUserErrors(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.safetensors")
	if _, stderr, err := gochat(t, append([]string{"model", "--save", truncated}, small...)...); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	raw, _ := os.ReadFile(truncated)
	os.WriteFile(truncated, raw[:len(raw)/2], 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "--depth", "0"}, "--depth must be positive"},
		{[]string{"model", "--engine", "tpu"}, "--engine"},
		{append([]string{"model", "--engine", "cuda"}, small...), "--engine cuda: no libcudart"},
		{append([]string{"model", "--engine", "metal"}, small...), "Metal needs macOS on Apple silicon"},
		{[]string{"model", "--blas", "mkl"}, "unknown BLAS"},
		{[]string{"model", "--vocab-size", "100"}, "at least 256"},
		{append([]string{"model", "--load", truncated}, small...), "truncated"},
		{append([]string{"model", "--load", filepath.Join(dir, "missing")}, small...), "no such file"},
		{[]string{"model", "--depth", "3", "--vocab-size", "300", "--max-seq-len", "24", "--load", truncated + "x"}, "no such file"},
		{[]string{"model", "--nope"}, "`gochat model` has no flag --nope"},
		{[]string{"bench", "model", "--steps", "0"}, "--steps must be positive"},
	} {
		_, stderr, err := gochat(t, c.args...)
		if err == nil {
			t.Errorf("%v: succeeded", c.args)
			continue
		}
		if !strings.Contains(stderr, c.want) || strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
			t.Errorf("%v: stderr %q, want a line with %q and no panic", c.args, stderr, c.want)
		}
	}
}

// TestLoadRejectsOtherShapes: weights of another depth are refused with the parameter named.
func TestLoadRejectsOtherShapes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if _, stderr, err := gochat(t, append([]string{"model", "--save", path}, small...)...); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	_, stderr, err := gochat(t, "model", "--depth", "3", "--vocab-size", "300", "--max-seq-len", "24", "--load", path)
	if err == nil || !strings.Contains(stderr, "transformer.") {
		t.Fatalf("loading d2 weights into d3: %v %q", err, stderr)
	}
}

func TestBenchSampleCommand(t *testing.T) {
	out, stderr, err := gochat(t, "bench", "sample", "--depth", "1", "--vocab-size", "300", "--batch", "2", "--prompt", "8", "--steps", "2")
	if err != nil || !strings.Contains(out, "| d1 V=300 B=2 prompt=8 |") || !strings.Contains(out, "of copy") {
		t.Fatalf("%v: %q %s", err, out, stderr)
	}
}

// TestBenchEnginesCommand compares the engines this machine has (the CPU; CUDA, missing
// here, is skipped with its reason) and draws the plot.
func TestBenchEnginesCommand(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "engines.png")
	out, stderr, err := gochat(t, "bench", "engines", "--engines", "cpu,cuda", "--depths", "1", "--steps", "1", "--plot", plot)
	if err != nil || !strings.Contains(out, "| qkv 2048×2304×768 |") || !strings.Contains(out, "| training d1 T=512 B=4 V=65536 |") ||
		!strings.Contains(stderr, "cuda: skipped") {
		t.Fatalf("%v: %q %s", err, out, stderr)
	}
	if info, err := os.Stat(plot); err != nil || info.Size() == 0 {
		t.Errorf("no plot: %v", err)
	}
}

func TestBenchModelCommand(t *testing.T) {
	out, stderr, err := gochat(t, append([]string{"bench", "model", "--steps", "20", "--profile"}, small...)...)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if !strings.Contains(out, "| d2 T=24 B=2 V=300 |") || !strings.Contains(stderr, "step 20/20") ||
		!strings.Contains(out, "share of CPU time") || !strings.Contains(out, "| work | CPU time |") {
		t.Fatalf("stdout %q stderr %q", out, stderr)
	}
}

// TestTokenizerCommands trains a tokenizer on Go's strings package through the binary,
// encodes a file, decodes the ids back to the same bytes, and measures bytes per token.
func TestTokenizerCommands(t *testing.T) {
	dir := t.TempDir()
	tokDir := filepath.Join(dir, "tok")
	src := filepath.Join(runtime.GOROOT(), "src", "strings")
	out, stderr, err := gochat(t, "tok", "train", "--vocab-size", "600", "--out", tokDir, src)
	if err != nil || !strings.Contains(out, "trained 600 tokens") {
		t.Fatalf("train: %v %s %s", err, out, stderr)
	}
	file := filepath.Join(src, "builder.go")
	idsOut, stderr, err := gochat(t, "tok", "encode", "--tokenizer", tokDir, file)
	if err != nil {
		t.Fatalf("encode: %v %s", err, stderr)
	}
	cmd := exec.Command(binary, "tok", "decode", "--tokenizer", tokDir)
	cmd.Stdin = strings.NewReader(idsOut)
	decoded, err := cmd.Output()
	want, _ := os.ReadFile(file)
	if err != nil || string(decoded) != string(want) {
		t.Fatalf("decode(encode(builder.go)) differs (%v)", err)
	}
	table, _, err := gochat(t, "tok", "eval", "--tokenizer", tokDir, file)
	if err != nil || !strings.Contains(table, "| "+tokDir+" | 600 |") {
		t.Fatalf("eval: %v %s", err, table)
	}
	for _, args := range [][]string{
		{"tok", "train", "--vocab-size", "100", "--out", tokDir, src},
		{"tok", "encode", "--tokenizer", filepath.Join(dir, "missing"), file},
		{"tok", "train"},
	} {
		if _, stderr, err := gochat(t, args...); err == nil || strings.Contains(stderr, "panic") {
			t.Errorf("%v: %v %s", args, err, stderr)
		}
	}
}

// TestDataPackGoSource packs Go's own strings package through the binary (the embedded
// default corpus, narrowed by --include) and reads the shards back.
func TestDataPackGoSource(t *testing.T) {
	out := filepath.Join(t.TempDir(), "base_data")
	stdout, stderr, err := gochat(t, "data", "pack", "--go-src", "--include", "strings*.go", "--val-docs", "2", "--out", out)
	if err != nil || !strings.Contains(stdout, "packed") {
		t.Fatalf("%v: %s %s", err, stdout, stderr)
	}
	shards, _ := filepath.Glob(filepath.Join(out, "shard_*.parquet"))
	if len(shards) < 2 {
		t.Fatalf("%d shards", len(shards))
	}
	if _, stderr, err := gochat(t, "data", "pack", "--out", out); err == nil || !strings.Contains(stderr, "give files") {
		t.Fatalf("pack without sources: %v %s", err, stderr)
	}
	tokDir := filepath.Join(t.TempDir(), "tok")
	stdout, stderr, err = gochat(t, "tok", "train", "--data", out, "--vocab-size", "400", "--max-chars", "50000", "--out", tokDir)
	if err != nil || !strings.Contains(stdout, "trained 400 tokens") || !strings.Contains(stderr, "documents") {
		t.Fatalf("tok train --data: %v %s %s", err, stdout, stderr)
	}
	if _, stderr, err := gochat(t, "tok", "train"); err == nil || !strings.Contains(stderr, "no shards in") {
		t.Errorf("tok train without data: %v %s", err, stderr)
	}
}

// TestDataDownload runs the download command against a local server holding two shards:
// the first training shard and the validation shard, which it fetches without being asked.
func TestDataDownload(t *testing.T) {
	served := t.TempDir()
	for _, i := range []int{0, loader.FineWebShards - 1} {
		if err := loader.WriteShard(filepath.Join(served, loader.ShardName(i)), []string{fmt.Sprint("document of shard ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(served)))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "base_data")
	stdout, stderr, err := gochat(t, "data", "download", "-n", "1", "--base-url", srv.URL, "--out", out)
	if err != nil || !strings.Contains(stdout, "shard_01822.parquet validates") || !strings.Contains(stderr, "100%") {
		t.Fatalf("%v: %s %s", err, stdout, stderr)
	}
	for _, i := range []int{0, loader.FineWebShards - 1} {
		want, _ := os.ReadFile(filepath.Join(served, loader.ShardName(i)))
		if got, err := os.ReadFile(filepath.Join(out, loader.ShardName(i))); err != nil || string(got) != string(want) {
			t.Errorf("%s differs from the served file (%v)", loader.ShardName(i), err)
		}
	}
	_, stderr, err = gochat(t, "data", "download", "-n", "3", "--base-url", srv.URL, "--out", out)
	if err == nil || !strings.Contains(stderr, "shard_00002.parquet") || !strings.Contains(stderr, "404") || strings.Contains(stderr, "panic") {
		t.Errorf("missing shards: %v %s", err, stderr)
	}
}

// TestBenchMemoryCommand plans two small models, prints the largest batch for each limit
// (none for a limit below the weights), measures a step of each in a child process and
// draws the plot.
func TestBenchMemoryCommand(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "memory.png")
	out, stderr, err := gochat(t, "bench", "memory", "--depths", "1,2", "--max-seq-len", "64", "--vocab-size", "512",
		"--total-batch-size", "1024", "--limits", "0.001,1", "--measure", "4", "--plot", plot)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	for _, want := range []string{"| model | recompute | fixed GiB | activations MB/token | 0.001 GiB | 1 GiB |",
		"| d1 | none |", "| d2 | blocks |", " – | 16 (", "| d2 | blocks | 4 |", "(peak RSS)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if info, err := os.Stat(plot); err != nil || info.Size() == 0 {
		t.Errorf("no plot: %v", err)
	}
}
