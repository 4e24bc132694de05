package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/scripted"
	"gochat/sampler"
	"gochat/tasks"
	"gochat/tokenizer"

	"github.com/parquet-go/parquet-go"
)

// readTask writes rows as a parquet file and reads it back as a task with read.
func readTask[R any](t *testing.T, read func(string) (tasks.Task, error), rows []R) tasks.Task {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.parquet")
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	task, err := read(path)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// arcRows are n ARC questions of different lengths with three to five choices, labelled
// with letters or (every third) with digits as some ARC rows are.
func arcRows(n int) []tasks.ARCFile {
	r := rand.New(rand.NewPCG(7, 8))
	rows := make([]tasks.ARCFile, n)
	for i := range rows {
		row := &rows[i]
		row.ID = fmt.Sprint("q", i)
		row.Question = fmt.Sprintf("Question %d: which of these %s?", i, strings.Repeat("words go on ", r.IntN(12)))
		for k := range 3 + r.IntN(3) {
			label := string(rune('A' + k))
			if i%3 == 2 {
				label = fmt.Sprint(k + 1)
			}
			row.Choices.Label = append(row.Choices.Label, label)
			row.Choices.Text = append(row.Choices.Text, fmt.Sprintf("choice %d%s", k, strings.Repeat(" more", r.IntN(5))))
		}
		row.AnswerKey = row.Choices.Label[r.IntN(len(row.Choices.Label))]
	}
	return rows
}

// randomModel is a model of cfg whose every weight is random, lm_head and the projections
// included (nanochat's initialisation zeroes those, which makes every logit equal).
func randomModel(t *testing.T, cfg graph.Config) *graph.Cached {
	w := graph.InitWeights(cfg, 3)
	r := rand.New(rand.NewPCG(4, 5))
	for name, p := range w {
		if name == "lm_head.weight" || strings.HasSuffix(name, "c_proj.weight") {
			for i := range p {
				p[i] = float32(r.NormFloat64() * 0.3)
			}
		}
	}
	m, err := graph.NewCached(cfg, w, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestChatCategoricalMatchesOneAtATime: every problem's choice in padded batches of 1, 3,
// all and more than all problems is the letter whose logit is largest at the last
// position of that prompt run alone, unpadded; verdicts and accuracy follow from it.
func TestChatCategoricalMatchesOneAtATime(t *testing.T) {
	tok := scripted.Tokenizer()
	cfg := graph.Config{SequenceLen: 64, VocabSize: tok.VocabSize(), NLayer: 2, NHead: 2, NKVHead: 1, NEmbd: 32}
	m := randomModel(t, cfg)
	task := readTask(t, tasks.ReadARC, arcRows(10))
	want := make([]string, task.Len())
	lengths := map[int]bool{}
	for i := range want {
		ex, err := task.Example(i)
		if err != nil {
			t.Fatal(err)
		}
		prompt, err := tok.RenderForCompletion(ex.Conversation)
		if err != nil {
			t.Fatal(err)
		}
		lengths[len(prompt)] = true
		logits, err := m.Forward(m.NewKVCache(1, len(prompt)), prompt, len(prompt))
		if err != nil {
			t.Fatal(err)
		}
		best := math.Inf(-1)
		for _, letter := range ex.Letters {
			if l := float64(logits[tok.Encode(letter)[0]]); l > best {
				best, want[i] = l, letter
			}
		}
	}
	if len(lengths) < 5 {
		t.Fatalf("the prompts have %d lengths: too few to test the padding", len(lengths))
	}
	for _, batch := range []int{1, 3, task.Len(), task.Len() + 4} {
		var calls []int
		res, err := Categorical(context.Background(), m, tok, task, batch, 0, func(done, total int) {
			if total != task.Len() {
				t.Errorf("progress total %d", total)
			}
			calls = append(calls, done)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Problems) != task.Len() || len(calls) != (task.Len()+batch-1)/batch || calls[len(calls)-1] != task.Len() {
			t.Fatalf("batch %d: %d problems, progress %v", batch, len(res.Problems), calls)
		}
		passed, choices := 0, map[string]bool{}
		for i, p := range res.Problems {
			ex, _ := task.Example(i)
			right := ex.Messages[1].Text
			if p.Index != i || p.Choice != want[i] || p.Answer != right || p.Passed != (p.Choice == right) {
				t.Errorf("batch %d, problem %d: %+v; want choice %s of answer %s", batch, i, p, want[i], right)
			}
			if p.Passed {
				passed++
			}
			choices[p.Choice] = true
		}
		if res.Passed != passed || res.Accuracy() != float64(passed)/float64(task.Len()) {
			t.Errorf("batch %d: %d passed, accuracy %v; counted %d", batch, res.Passed, res.Accuracy(), passed)
		}
		if len(choices) < 2 {
			t.Errorf("batch %d: the model chose %v for every problem: the test cannot tell positions apart", batch, choices)
		}
	}
	cut, err := Categorical(context.Background(), m, tok, task, 3, 4, nil)
	if err != nil || len(cut.Problems) != 4 || cut.Problems[3].Choice != want[3] {
		t.Errorf("--max-problems 4: %+v, %v", cut.Problems, err)
	}
}

// TestChatCategoricalErrors: a letter of two tokens, a task without letters, a tokenizer
// of another vocabulary and a bad batch size are errors; a cancelled evaluation returns
// the batches it finished.
func TestChatCategoricalErrors(t *testing.T) {
	tok := scripted.Tokenizer()
	cfg := graph.Config{SequenceLen: 64, VocabSize: tok.VocabSize(), NLayer: 1, NHead: 1, NKVHead: 1, NEmbd: 16}
	m := randomModel(t, cfg)
	ctx := context.Background()
	rows := arcRows(1)
	rows[0].Choices.Label = []string{"AB", "CD", "EF"}
	rows[0].Choices.Text = rows[0].Choices.Text[:3]
	rows[0].AnswerKey = "CD"
	if _, err := Categorical(ctx, m, tok, readTask(t, tasks.ReadARC, rows), 1, 0, nil); err == nil || !strings.Contains(err.Error(), `"AB" encodes to 2 tokens`) {
		t.Errorf("a letter of two tokens: %v", err)
	}
	gsm8k := readTask(t, tasks.ReadGSM8K, []tasks.GSM8KFile{{Question: "What is 1+1?", Answer: "#### 2"}})
	if _, err := Categorical(ctx, m, tok, gsm8k, 1, 0, nil); err == nil || !strings.Contains(err.Error(), "no answer letters") {
		t.Errorf("a task without letters: %v", err)
	}
	other, _ := tokenizer.New(hashTokens())
	arc := readTask(t, tasks.ReadARC, arcRows(5))
	if _, err := Categorical(ctx, m, other, arc, 1, 0, nil); err == nil || !strings.Contains(err.Error(), "the tokenizer has 266 tokens, the model 265") {
		t.Errorf("another tokenizer: %v", err)
	}
	if _, err := Categorical(ctx, m, tok, arc, 0, 0, nil); err == nil {
		t.Error("a batch of 0")
	}
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := Categorical(stop, m, tok, arc, 2, 0, func(int, int) { cancel() })
	if !errors.Is(err, context.Canceled) || len(res.Problems) != 2 {
		t.Errorf("cancelled after the first batch: %d problems, %v", len(res.Problems), err)
	}
}

// hashTokens are the 256 bytes and "#### ", GSM8K's answer mark, as one token.
func hashTokens() [][]byte {
	return append(tokenizer.ByteTokens(), []byte("#### "))
}

// calculatorModel is a tokenizer and a model that answers every question with a
// calculator call and its result: it writes <|python_start|>6*7<|python_end|>, the
// calculator's <|output_start|>42<|output_end|> is forced in, and it ends "#### 42".
func calculatorModel(t *testing.T) *sampler.Generator {
	tok, err := tokenizer.New(hashTokens())
	if err != nil {
		t.Fatal(err)
	}
	sp := func(name string) int { id, _ := tok.Special(name); return id }
	script := map[int]int{
		sp("<|assistant_start|>"): sp("<|python_start|>"), sp("<|python_start|>"): '6', '6': '*', '*': '7',
		'7': sp("<|python_end|>"), sp("<|output_end|>"): 256, 256: '4', '4': '2', '2': sp("<|assistant_end|>"),
	}
	cfg, w := scripted.Model(tok.VocabSize(), 64, func(i int) int {
		if next, ok := script[i]; ok {
			return next
		}
		return -1
	})
	m, err := graph.NewCached(cfg, w, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := sampler.NewGenerator(m, tok)
	if err != nil {
		t.Fatal(err)
	}
	return gen
}

// TestChatGenerativeGSM8K: through the generator with the calculator, every sample of
// every problem answers 42, and GSM8K's judge passes the problems whose answer is 42.
func TestChatGenerativeGSM8K(t *testing.T) {
	gen := calculatorModel(t)
	task := readTask(t, tasks.ReadGSM8K, []tasks.GSM8KFile{
		{Question: "What is 6 times 7?", Answer: "6 times 7 is <<6*7=42>>42.\n#### 42"},
		{Question: "What is 6 times 7, less 1?", Answer: "<<6*7=42>>42 less 1 is <<42-1=41>>41.\n#### 41"},
		{Question: "What is 7 times 6?", Answer: "#### 42"},
	})
	s := sampler.Settings{MaxTokens: 64, TopK: 50, Seed: 42, Rows: 2}
	var calls []int
	res, err := Generative(context.Background(), gen, task, JudgeGSM8K, s, 0, func(done, total int) {
		calls = append(calls, done*10+total)
	})
	if err != nil {
		t.Fatal(err)
	}
	const reply = "<|python_start|>6*7<|python_end|><|output_start|>42<|output_end|>#### 42"
	for i, want := range []bool{true, false, true} {
		p := res.Problems[i]
		if p.Index != i || p.Passed != want || len(p.Completions) != 2 || p.Completions[0] != reply || p.Completions[1] != reply {
			t.Errorf("problem %d: %+v; want passed %v and two samples %q", i, p, want, reply)
		}
	}
	if res.Passed != 2 || res.Accuracy() != 2.0/3 || fmt.Sprint(calls) != "[13 23 33]" {
		t.Errorf("%d passed, accuracy %v, progress %v", res.Passed, res.Accuracy(), calls)
	}
	if cut, err := Generative(context.Background(), gen, task, JudgeGSM8K, s, 1, nil); err != nil || len(cut.Problems) != 1 {
		t.Errorf("--max-problems 1: %d problems, %v", len(cut.Problems), err)
	}
}

// TestChatGenerativePassAtK: a problem passes when any of its samples does, every sample
// is judged, and judging errors and cancellation stop the evaluation.
func TestChatGenerativePassAtK(t *testing.T) {
	gen := calculatorModel(t)
	task := readTask(t, tasks.ReadGSM8K, []tasks.GSM8KFile{{Question: "First?", Answer: "#### 1"}, {Question: "Second?", Answer: "#### 2"}})
	// The judge passes only the third sample of the first question.
	run := func(rows int) (ChatResult, map[string]int) {
		judged := map[string]int{}
		judge := func(_ context.Context, ex tasks.Example, completion string) (bool, error) {
			q := ex.Messages[0].Text
			judged[q]++
			return q == "First?" && judged[q] == 3, nil
		}
		res, err := Generative(context.Background(), gen, task, judge, sampler.Settings{MaxTokens: 64, Rows: rows}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res, judged
	}
	for _, c := range []struct {
		rows   int
		passed bool
	}{{1, false}, {2, false}, {3, true}, {5, true}} {
		res, judged := run(c.rows)
		if res.Problems[0].Passed != c.passed || res.Problems[1].Passed || judged["First?"] != c.rows || judged["Second?"] != c.rows {
			t.Errorf("%d samples: passed %v and %v, judged %v; want the first passed: %v", c.rows, res.Problems[0].Passed, res.Problems[1].Passed, judged, c.passed)
		}
		for _, p := range res.Problems {
			if len(p.Completions) != c.rows {
				t.Errorf("%d samples: problem %d has %d completions", c.rows, p.Index, len(p.Completions))
			}
		}
	}
	failing := func(context.Context, tasks.Example, string) (bool, error) { return false, errors.New("no sandbox") }
	if _, err := Generative(context.Background(), gen, task, failing, sampler.Settings{MaxTokens: 8}, 0, nil); err == nil || !strings.Contains(err.Error(), "judging problem 0: no sandbox") {
		t.Errorf("a failing judge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Generative(ctx, gen, task, JudgeGSM8K, sampler.Settings{MaxTokens: 64}, 0, func(int, int) { cancel() })
	if !errors.Is(err, context.Canceled) || len(res.Problems) != 1 {
		t.Errorf("cancelled after the first problem: %d problems, %v", len(res.Problems), err)
	}
}

// TestChatJudgeHumanEval: HumanEval's judge runs a completion's program against the
// problem's tests: the canonical solution in a code block passes, a wrong one and the
// calculator model's reply (through Generative) fail, and a problem of another task is an
// error.
func TestChatJudgeHumanEval(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skipf("skipped: python3 is not installed (%v), and HumanEval's judge runs the tests", err)
	}
	row := tasks.HumanEvalRow{TaskID: "Test/0", Prompt: "def twice(x):\n    \"\"\" Twice x. \"\"\"\n",
		CanonicalSolution: "    return 2 * x\n", EntryPoint: "twice",
		Test: "def check(candidate):\n    assert candidate(3) == 6\n    assert candidate(-1) == -2\n"}
	task := tasks.Rows[tasks.HumanEvalRow]{Rows: []tasks.HumanEvalRow{row}, Convert: tasks.HumanEval}
	ex, err := task.Example(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for completion, want := range map[string]bool{
		"Here it is:\n```python\n" + row.Prompt + row.CanonicalSolution + "```\n": true,
		"```python\ndef twice(x):\n    return x + 1\n```":                         false,
	} {
		if got, err := JudgeHumanEval(ctx, ex, completion); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", completion, got, err, want)
		}
	}
	res, err := Generative(ctx, calculatorModel(t), task, JudgeHumanEval, sampler.Settings{MaxTokens: 64}, 0, nil)
	if err != nil || res.Passed != 0 || len(res.Problems) != 1 || len(res.Problems[0].Completions) != 1 {
		t.Errorf("the calculator's reply to HumanEval: %+v, %v", res, err)
	}
	gsm8k, _ := tasks.GSM8K(tasks.GSM8KRow{Question: "1+1?", Answer: "#### 2"})
	if _, err := JudgeHumanEval(ctx, gsm8k, "2"); err == nil {
		t.Error("a GSM8K problem judged as HumanEval")
	}
}

// TestChatCORE: the mean centred accuracy of the five tasks, and none without all five.
func TestChatCORE(t *testing.T) {
	acc := map[string]float64{"ARC-Easy": 0.5, "ARC-Challenge": 0.25, "MMLU": 1, "GSM8K": 0.1, "HumanEval": 0}
	// (0.5−0.25)/0.75 = 1/3, 0, 1, 0.1 and 0, over five.
	if got, ok := ChatCORE(acc); !ok || math.Abs(got-(1.0/3+1+0.1)/5) > 1e-12 {
		t.Errorf("ChatCORE %v, %v", got, ok)
	}
	delete(acc, "HumanEval")
	acc["Other"] = 1
	if got, ok := ChatCORE(acc); ok {
		t.Errorf("ChatCORE %v without HumanEval", got)
	}
}
