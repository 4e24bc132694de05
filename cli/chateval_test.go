package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gochat/checkpoint"
	"gochat/graph"
	"gochat/internal/scripted"
	"gochat/tasks"
	"gochat/tokenizer"

	"github.com/parquet-go/parquet-go"
)

// writeSplit writes rows as the one parquet file of a dataset's split under home, where
// tasks.Open finds it.
func writeSplit[R any](t *testing.T, home, dataset, split string, rows []R) string {
	dir := filepath.Join(home, "tasks", dataset, split)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "0000.parquet")
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	return path
}

// arcFixtures are ARC questions with the answers given, each with the choices A to D.
func arcFixtures(answers ...string) []tasks.ARCFile {
	rows := make([]tasks.ARCFile, len(answers))
	for i, a := range answers {
		rows[i].ID, rows[i].Question, rows[i].AnswerKey = fmt.Sprint("arc", i), fmt.Sprintf("Which is number %d?", i), a
		rows[i].Choices.Label = []string{"A", "B", "C", "D"}
		rows[i].Choices.Text = []string{"one", "two", "three", "four"}
	}
	return rows
}

// chatEvalReply is what the model of chatEvalHome writes to every question.
const chatEvalReply = "<|python_start|>6*7<|python_end|><|output_start|>42<|output_end|>#### 42"

// chatEvalHome makes a GOCHAT_HOME for `eval chat`: a tokenizer of the bytes and "#### "
// (GSM8K's answer mark as one token); a model, saved as an sft and a base checkpoint, that
// after <|assistant_start|> prefers B among the letters and writes chatEvalReply (its
// calculator output forced in); and the test splits of ARC-Easy (answers A B B C D: 2 of 5
// are B), ARC-Challenge (B B A: 2 of 3), MMLU (A B C D: 1 of 4), GSM8K (42 41 42: 2 of 3)
// and HumanEval (two problems, which the reply, not Python, fails). It returns the home and
// the datasets' files.
func chatEvalHome(t *testing.T) (string, map[string]string) {
	home := t.TempDir()
	tokens := append(tokenizer.ByteTokens(), []byte("##"), []byte("####"), []byte("#### ")) // merges, as a saved tokenizer needs
	const mark = 258                                                                        // "#### "
	tok, err := tokenizer.New(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(filepath.Join(home, "tokenizer")); err != nil {
		t.Fatal(err)
	}
	sp := func(name string) int { id, _ := tok.Special(name); return id }
	start := sp("<|assistant_start|>")
	script := map[int]int{
		start: sp("<|python_start|>"), sp("<|python_start|>"): '6', '6': '*', '*': '7', '7': sp("<|python_end|>"),
		sp("<|output_end|>"): mark, mark: '4', '4': '2', '2': sp("<|assistant_end|>"),
	}
	cfg, w := scripted.Model(tok.VocabSize(), 64, func(i int) int {
		if next, ok := script[i]; ok {
			return next
		}
		return -1
	})
	w["lm_head.weight"]['B'*cfg.NEmbd+start] = 0.5 // below <|python_start|>'s 1: sampling never takes it
	saveModel(t, home, cfg, w, tok, "chatsft_checkpoints", "base_checkpoints")
	files := map[string]string{
		"ARC-Easy":      writeSplit(t, home, "arc-easy", "test", arcFixtures("A", "B", "B", "C", "D")),
		"ARC-Challenge": writeSplit(t, home, "arc-challenge", "test", arcFixtures("B", "B", "A")),
		"MMLU": writeSplit(t, home, "mmlu", "test", []tasks.MMLUFile{
			{Question: "First?", Subject: "math", Choices: []string{"a", "b", "c", "d"}, Answer: 0}, {Question: "Second?", Subject: "math", Choices: []string{"a", "b", "c", "d"}, Answer: 1},
			{Question: "Third?", Subject: "law", Choices: []string{"a", "b", "c", "d"}, Answer: 2}, {Question: "Fourth?", Subject: "law", Choices: []string{"a", "b", "c", "d"}, Answer: 3}}),
		"GSM8K": writeSplit(t, home, "gsm8k", "test", []tasks.GSM8KFile{
			{Question: "What is 6 times 7?", Answer: "6 times 7 is <<6*7=42>>42.\n#### 42"},
			{Question: "What is 6 times 7, less 1?", Answer: "<<6*7=42>>42 less 1 is <<42-1=41>>41.\n#### 41"},
			{Question: "What is 7 times 6?", Answer: "#### 42"}}),
		"HumanEval": writeSplit(t, home, "humaneval", "test", []tasks.HumanEvalFile{
			{TaskID: "Test/0", Prompt: "def one():\n", CanonicalSolution: "    return 1\n", Test: "def check(f):\n    assert f() == 1\n", EntryPoint: "one"},
			{TaskID: "Test/1", Prompt: "def two():\n", CanonicalSolution: "    return 2\n", Test: "def check(f):\n    assert f() == 2\n", EntryPoint: "two"}}),
	}
	return home, files
}

// saveModel saves weights w of cfg, trained with tok, as step 1 of run d1 in each folder.
func saveModel(t *testing.T, home string, cfg graph.Config, w graph.Weights, tok *tokenizer.Tokenizer, folders ...string) {
	meta := checkpoint.Meta{Step: 1, ModelConfig: cfg, Tokenizer: checkpoint.Tokenizer{Fingerprint: tok.Fingerprint()}}
	for _, folder := range folders {
		if err := checkpoint.Save(filepath.Join(home, folder, "d1"), w, nil, meta); err != nil {
			t.Fatal(err)
		}
	}
}

// readChatReport reads the file --json wrote.
func readChatReport(t *testing.T, path string) chatEvalReport {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r chatEvalReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%v:\n%s", err, raw)
	}
	return r
}

// shuffledAnswers are the right letters of a multiple-choice dataset's problems in the
// order nanochat evaluates them: shuffled with seed 42.
func shuffledAnswers(t *testing.T, read func(string) (tasks.Task, error), path string) []string {
	task, err := read(path)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := tasks.Shuffle(task, 42)
	var answers []string
	for i := range shuffled.Len() {
		ex, _ := shuffled.Example(i)
		answers = append(answers, ex.Messages[1].Text)
	}
	return answers
}

// TestEvalChat runs `gochat eval chat` on the fixtures: the five tasks by default, in
// nanochat's order, each problem in the shuffled order with its verdict, the accuracies
// and ChatCORE printed and written with --json (without python3, the four other tasks and
// no ChatCORE); then two tasks named in any case and cut to two problems with three
// samples each, on the base checkpoint.
func TestEvalChat(t *testing.T) {
	home, files := chatEvalHome(t)
	report := filepath.Join(t.TempDir(), "chat.json")
	args := []string{"eval", "chat", "--json", report}
	want := []struct {
		name          string
		passed, total int
	}{{"ARC-Easy", 2, 5}, {"ARC-Challenge", 2, 3}, {"MMLU", 1, 4}, {"GSM8K", 2, 3}, {"HumanEval", 0, 2}}
	// (0.4−0.25)/0.75, (2/3−0.25)/0.75, 0, 2/3 and 0, over five.
	chatCORE, lines := (0.2+(2.0/3-0.25)/0.75+2.0/3)/5, []string{"HumanEval accuracy: 0.00%", "ChatCORE metric: 0.2844"}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Logf("python3 is not installed (%v): HumanEval and ChatCORE are left out", err)
		args, want, chatCORE, lines = append(args, "-a", "ARC-Easy|ARC-Challenge|MMLU|GSM8K"), want[:4], 0, nil
	}
	out, stderr, err := inHome(t, home, args...)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, stderr)
	}
	for _, line := range append(lines, "ARC-Easy: 5 of 5 problems (arc-easy test)", "Final: 2/5 (40.00%)", "ARC-Easy accuracy: 40.00%",
		"ARC-Challenge accuracy: 66.67%", "MMLU accuracy: 25.00%", "GSM8K accuracy: 66.67%", "problems/s", "results written to") {
		if !strings.Contains(out, line) {
			t.Errorf("the output lacks %q:\n%s", line, out)
		}
	}
	r := readChatReport(t, report)
	if r.Source != "sft" || r.Interrupted || len(r.Tasks) != len(want) || (r.ChatCORE == nil) != (chatCORE == 0) ||
		(r.ChatCORE != nil && math.Abs(*r.ChatCORE-chatCORE) > 1e-12) {
		t.Fatalf("report: %+v; want ChatCORE %v", r, chatCORE)
	}
	reads := map[string]func(string) (tasks.Task, error){"ARC-Easy": tasks.ReadARC, "ARC-Challenge": tasks.ReadARC, "MMLU": tasks.ReadMMLU}
	for i, want := range want {
		task := r.Tasks[i]
		if task.Name != want.name || task.Passed != want.passed || task.Total != want.total || len(task.Problems) != want.total ||
			task.Accuracy != float64(want.passed)/float64(want.total) {
			t.Errorf("task %d: %s %d/%d (%v), want %s %d/%d", i, task.Name, task.Passed, task.Total, task.Accuracy, want.name, want.passed, want.total)
			continue
		}
		if read := reads[want.name]; read != nil {
			var answers []string
			for k, p := range task.Problems {
				answers = append(answers, p.Answer)
				if p.Index != k || p.Choice != "B" || p.Passed != (p.Answer == "B") {
					t.Errorf("%s problem %d: %+v", want.name, k, p)
				}
			}
			if shuffled := shuffledAnswers(t, read, files[want.name]); !slices.Equal(answers, shuffled) {
				t.Errorf("%s: answers in the order %v, want the shuffled order %v", want.name, answers, shuffled)
			}
		}
	}
	gsm8k := r.Tasks[3].Problems
	for _, task := range r.Tasks[3:] {
		for _, p := range task.Problems {
			if len(p.Completions) != 1 || p.Completions[0] != chatEvalReply {
				t.Errorf("%s problem %d: %+v", task.Name, p.Index, p)
			}
		}
	}

	out, stderr, err = inHome(t, home, "eval", "chat", "-i", "base", "-a", "mmlu,GSM8K", "-x", "2", "-n", "3", "--json", report)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, stderr)
	}
	r = readChatReport(t, report)
	if r.Source != "base" || len(r.Tasks) != 2 || r.Tasks[0].Name != "MMLU" || r.Tasks[1].Name != "GSM8K" {
		t.Fatalf("two tasks: %+v", r)
	}
	if mmlu := shuffledAnswers(t, tasks.ReadMMLU, files["MMLU"]); r.Tasks[0].Total != 2 || r.Tasks[0].Problems[1].Answer != mmlu[1] {
		t.Errorf("MMLU cut to 2: %+v; the shuffled answers %v", r.Tasks[0], mmlu)
	}
	for k, p := range r.Tasks[1].Problems {
		if len(p.Completions) != 3 || p.Passed != gsm8k[k].Passed {
			t.Errorf("GSM8K with three samples, problem %d: %+v", k, p)
		}
	}
}

// TestEvalChatErrors: an unknown task, a dataset not downloaded, another tokenizer than
// the checkpoint's, a stage without checkpoints, bad flags and HumanEval without Python
// each give one line.
func TestEvalChatErrors(t *testing.T) {
	home, _ := chatEvalHome(t)
	other := filepath.Join(t.TempDir(), "tokenizer")
	if err := scripted.Tokenizer().Save(other); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(home, "tasks", "arc-challenge"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-a", "ARC-Easy|SpellingBee"}, `no task "SpellingBee"; the tasks are ARC-Easy, ARC-Challenge, MMLU, GSM8K, HumanEval`},
		{[]string{"-a", "ARC-Challenge"}, "run gochat data download --task arc-challenge"},
		{[]string{"-a", "MMLU", "--tokenizer", other}, "was trained with tokenizer"},
		{[]string{"-a", "MMLU", "-i", "rl"}, "no checkpoints in"},
		{[]string{"-a", "MMLU", "-n", "0"}, "--num-samples"},
		{[]string{"-a", "MMLU", "-b", "0"}, "--batch-size"},
	} {
		_, stderr, err := inHome(t, home, append([]string{"eval", "chat"}, c.args...)...)
		var lines []string // but the engine's notice of the BLAS it found
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if !strings.Contains(l, "BLAS") {
				lines = append(lines, l)
			}
		}
		if err == nil || len(lines) != 1 || !strings.Contains(lines[0], c.want) || strings.Contains(stderr, "panic") {
			t.Errorf("%v: %v %q, want one line with %q", c.args, err, stderr, c.want)
		}
	}
	cmd := exec.Command(binary, "eval", "chat", "-a", "HumanEval")
	cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home, "PATH="+t.TempDir()) // no python3 there
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "HumanEval runs the model's programs: sandbox: no Python interpreter") {
		t.Errorf("HumanEval without Python: %v %s", err, out)
	}
}

// TestEvalChatInterrupt: Ctrl-C during a generation that would take minutes stops the
// evaluation at once, says so, and still writes --json, marked interrupted.
func TestEvalChatInterrupt(t *testing.T) {
	home, _ := chatEvalHome(t)
	tok, err := tokenizer.Load(filepath.Join(home, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, w := scripted.Model(tok.VocabSize(), 4096, func(int) int { return 'a' }) // writes "a" forever
	saveModel(t, home, cfg, w, tok, "mid_checkpoints")
	report := filepath.Join(t.TempDir(), "chat.json")
	cmd := exec.Command(binary, "eval", "chat", "-i", "mid", "-a", "GSM8K", "-m", "30000", "--json", report)
	cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var out strings.Builder
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			out.WriteString(lines.Text() + "\n")
			if strings.HasPrefix(lines.Text(), "GSM8K: 3 of 3 problems") {
				cmd.Process.Signal(syscall.SIGINT)
			}
		}
		done <- cmd.Wait()
	}()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running a minute after Ctrl-C: %v", <-done)
	}
	if err == nil || !strings.Contains(out.String(), "Interrupted after 0 of 3 problems") || !strings.Contains(stderr.String(), "gochat: eval chat: interrupted") {
		t.Errorf("%v\n%s\n%s", err, out.String(), stderr.String())
	}
	if r := readChatReport(t, report); !r.Interrupted || len(r.Tasks) != 1 || r.Tasks[0].Total != 0 {
		t.Errorf("report: %+v", r)
	}
}
