package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gochat/internal/golden"
	"time"
)

// goldenCoreCases are the folders of CORE cases made by nanochat's own code, each holding
// nanochat_core.json beside a bundle/ and a model/ (testdata/golden/README.md): testdata's
// and GOCHAT_GOLDEN_DIR's.
func goldenCoreCases(t testing.TB) []string {
	dirs, err := golden.Cases("../testdata/golden/core", "nanochat_core.json")
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// coreResults is both nanochat_core.json's run and `eval core --json`'s file: what the
// test compares.
type coreResults struct {
	Core  float64 `json:"core_metric"`
	Tasks map[string]struct {
		Accuracy float64 `json:"accuracy"`
		Centered float64 `json:"centered"`
		Items    []struct {
			Line    int  `json:"line"`
			Correct bool `json:"correct"`
		} `json:"items"`
	} `json:"tasks"`
}

// coreHome is a GOCHAT_HOME whose base_checkpoints/golden is the case's model folder.
func coreHome(t *testing.T, caseDir string) string {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "base_checkpoints"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(caseDir, "model"), filepath.Join(home, "base_checkpoints", "golden")); err != nil {
		t.Fatal(err)
	}
	return home
}

// coreArgs is `eval core` on the case's model and tokenizer, then args.
func coreArgs(caseDir string, args ...string) []string {
	return append([]string{"eval", "core", "-g", "golden", "--engine", "cpu", "--tokenizer", filepath.Join(caseDir, "model", "tokenizer")}, args...)
}

// TestEvalCoreMatchesNanochat runs `gochat eval core` on each golden case, for every run of
// its nanochat_core.json (every item, and cut to 25 a task): the --json file holds
// nanochat's items in its order with its verdict on each, and its accuracies, centred
// accuracies and CORE within 1e-6.
func TestEvalCoreMatchesNanochat(t *testing.T) {
	for _, dir := range goldenCoreCases(t) {
		raw, err := os.ReadFile(filepath.Join(dir, "nanochat_core.json"))
		if err != nil {
			t.Fatal(err)
		}
		var golden map[string]coreResults
		if err := json.Unmarshal(raw, &golden); err != nil {
			t.Fatal(err)
		}
		home := coreHome(t, dir)
		for run, want := range golden {
			maxPerTask := "-1"
			if run != "all" {
				maxPerTask = strings.TrimPrefix(run, "max_per_task_")
				if _, err := strconv.Atoi(maxPerTask); err != nil {
					t.Fatalf("golden run %q: want all or max_per_task_N", run)
				}
			}
			out := filepath.Join(t.TempDir(), "core.json")
			stdout, stderr, err := inHome(t, home, coreArgs(dir, "--bundle", filepath.Join(dir, "bundle"), "--max-per-task", maxPerTask, "--json", out)...)
			if err != nil {
				t.Fatalf("%s %s: %v %s", dir, run, err, stderr)
			}
			for _, line := range []string{"Evaluating: ", "items/s", "Task                               , Accuracy  , Centered", fmt.Sprintf("CORE                               ,           , %.6f", want.Core)} {
				if !strings.Contains(stdout, line) {
					t.Errorf("%s %s: the output lacks %q:\n%s", dir, run, line, stdout)
				}
			}
			if !strings.Contains(stderr, "100%") {
				t.Errorf("%s %s: no finished progress bar in %q", dir, run, stderr)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var got coreResults
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if len(got.Tasks) != len(want.Tasks) {
				t.Errorf("%s %s: %d tasks, nanochat %d", dir, run, len(got.Tasks), len(want.Tasks))
			}
			for label, w := range want.Tasks {
				g := got.Tasks[label]
				if !slices.Equal(g.Items, w.Items) {
					t.Errorf("%s %s %s: items (line, correct) %v, nanochat %v", dir, run, label, g.Items, w.Items)
				}
				if math.Abs(g.Accuracy-w.Accuracy) > 1e-6 || math.Abs(g.Centered-w.Centered) > 1e-6 {
					t.Errorf("%s %s %s: accuracy %.7f centred %.7f, nanochat %.7f %.7f", dir, run, label, g.Accuracy, g.Centered, w.Accuracy, w.Centered)
				}
			}
			if math.Abs(got.Core-want.Core) > 1e-6 {
				t.Errorf("%s %s: CORE %.7f, nanochat %.7f", dir, run, got.Core, want.Core)
			}
		}
	}
}

// TestEvalCoreFetchesBundle: with no bundle in $GOCHAT_HOME, eval core fetches nanochat's
// zip (a folder eval_bundle/ in it) from --base-url, unpacks it there and evaluates; a
// server without it is a one-line error.
func TestEvalCoreFetchesBundle(t *testing.T) {
	dir := goldenCoreCases(t)[0]
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	err := filepath.WalkDir(filepath.Join(dir, "bundle"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(dir, "bundle"), path)
		f, err := w.Create("eval_bundle/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = f.Write(raw)
		return err
	})
	if err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/files/eval_bundle.zip", func(rw http.ResponseWriter, r *http.Request) {
		http.ServeContent(rw, r, "eval_bundle.zip", time.Time{}, bytes.NewReader(buf.Bytes()))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	home := coreHome(t, dir)
	stdout, stderr, err := inHome(t, home, coreArgs(dir, "--max-per-task", "10", "--base-url", srv.URL+"/files")...)
	if err != nil || !strings.Contains(stderr, "no eval bundle at "+filepath.Join(home, "eval_bundle")) || !strings.Contains(stdout, "CORE   ") {
		t.Fatalf("%v: %s %s", err, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(home, "eval_bundle", "eval_data", "go", "go_keyword.jsonl")); err != nil {
		t.Error(err)
	}
	_, stderr, err = inHome(t, coreHome(t, dir), coreArgs(dir, "--base-url", srv.URL+"/nothing")...)
	if err == nil || !strings.Contains(lastLine(stderr), "404") || strings.Contains(stderr, "panic") {
		t.Errorf("a server without the bundle: %v %q", err, stderr)
	}
}

// TestEvalCoreErrors: a broken bundle, a prompt longer than the model reaches and a misused
// flag each stop eval core with one line naming what is wrong (the file and line for a
// bad item), never a panic.
func TestEvalCoreErrors(t *testing.T) {
	dir := goldenCoreCases(t)[0]
	home := coreHome(t, dir)
	broken := func(edit func(bundle string)) string {
		bundle := filepath.Join(t.TempDir(), "bundle")
		if err := os.CopyFS(bundle, os.DirFS(filepath.Join(dir, "bundle"))); err != nil {
			t.Fatal(err)
		}
		edit(bundle)
		return bundle
	}
	appendTo := func(bundle, file, line string) {
		f, err := os.OpenFile(filepath.Join(bundle, "eval_data", "go", file), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(line + "\n")
		f.Close()
	}
	long := broken(func(b string) {
		appendTo(b, "go_identifier.jsonl", fmt.Sprintf(`{"context": %q, "continuation": "x"}`, strings.Repeat("func main() { return } ", 2000)))
	})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bundle", broken(func(b string) { os.Remove(filepath.Join(b, "core.yaml")) })}, "core.yaml: no such file"},
		{[]string{"--bundle", broken(func(b string) { os.WriteFile(filepath.Join(b, "core.yaml"), []byte("icl_tasks: [label: {"), 0o644) })}, "core.yaml: yaml:"},
		{[]string{"--bundle", broken(func(b string) { os.Remove(filepath.Join(b, "eval_data", "go", "go_prev_line.jsonl")) })}, "go_prev_line.jsonl: no such file"},
		{[]string{"--bundle", broken(func(b string) { appendTo(b, "go_keyword.jsonl", `{"query": 3}`) })}, "go_keyword.jsonl:61: json: cannot unmarshal number"},
		{[]string{"--bundle", long}, "go_identifier.jsonl:61: the item's prompt (with 0 few-shot examples) is"},
		{[]string{"--bundle", filepath.Join(dir, "bundle"), "--max-per-task", "2"}, "task go_keyword shows each item 3 others as few-shot examples but is evaluated on 2 items"},
		{[]string{"--bundle", filepath.Join(dir, "bundle"), "--batch-tokens", "0"}, "--batch-tokens must be positive"},
		{[]string{"--bundle", filepath.Join(dir, "bundle"), "-i", "dpo"}, `--source "dpo": want base, mid, sft or rl`},
		{[]string{"--bundle", filepath.Join(dir, "bundle"), "-i", "sft"}, `no run "golden" in`},
		{[]string{"--bundle", filepath.Join(dir, "bundle"), "--json", filepath.Join(home, "none", "core.json")}, "--json " + filepath.Join(home, "none", "core.json") + ": no folder"},
		{[]string{"--bundle", filepath.Join(dir, "bundle"), "--max-per-tsk", "3"}, "`gochat eval core` has no flag --max-per-tsk; did you mean --max-per-task?"},
	} {
		_, stderr, err := inHome(t, home, coreArgs(dir, c.args...)...)
		if err == nil || !strings.Contains(lastLine(stderr), c.want) || strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
			t.Errorf("%v: %v, stderr %q, want one line with %q", c.args, err, stderr, c.want)
		}
	}
}

// lastLine is the last line of s, where the binary's error goes.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestEvalCoreInterrupted: Ctrl-C after the first task stops the run with what was done
// printed, no CORE metric and no --json file (nor a temporary one) left.
func TestEvalCoreInterrupted(t *testing.T) {
	dir := goldenCoreCases(t)[0]
	home := coreHome(t, dir)
	// The golden tasks three times over, so that much is left when the signal comes.
	bundle := filepath.Join(t.TempDir(), "bundle")
	if err := os.CopyFS(bundle, os.DirFS(filepath.Join(dir, "bundle"))); err != nil {
		t.Fatal(err)
	}
	yamlRaw, _ := os.ReadFile(filepath.Join(bundle, "core.yaml"))
	csvRaw, _ := os.ReadFile(filepath.Join(bundle, "eval_meta_data.csv"))
	tasks, csv := string(yamlRaw), strings.TrimRight(string(csvRaw), "\n")+"\n"
	for _, copy := range []string{"_b", "_c"} {
		body := strings.TrimPrefix(string(yamlRaw), "icl_tasks:\n")
		tasks += strings.ReplaceAll(body, "\n  dataset_uri", copy+"\n  dataset_uri")
		for _, row := range strings.Split(strings.TrimSpace(string(csvRaw)), "\n")[1:] {
			label, rest, _ := strings.Cut(row, ",")
			csv += label + copy + "," + rest + "\n"
		}
	}
	os.WriteFile(filepath.Join(bundle, "core.yaml"), []byte(tasks), 0o644)
	os.WriteFile(filepath.Join(bundle, "eval_meta_data.csv"), []byte(csv), 0o644)

	outDir := t.TempDir()
	cmd := exec.Command(binary, coreArgs(dir, "--bundle", bundle, "--json", filepath.Join(outDir, "core.json"))...)
	cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	pipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	var out strings.Builder
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Evaluating: go_next_line ") {
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err := cmd.Wait()
	if err == nil || !strings.Contains(lastLine(stderr.String()), "eval core: interrupted after ") || !strings.Contains(lastLine(stderr.String()), "of 15 tasks: no CORE metric, and no --json written") {
		t.Fatalf("interrupted run: %v\n%s\n%s", err, out.String(), stderr.String())
	}
	if strings.Contains(out.String(), "CORE   ") || strings.Contains(out.String(), "Evaluating: go_last_word_c ") {
		t.Errorf("the run went on to the end:\n%s", out.String())
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
		t.Errorf("files left in the --json folder: %v", entries)
	}
}
