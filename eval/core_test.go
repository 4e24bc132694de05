package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"gochat/checkpoint"
	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/golden"
	"gochat/internal/hostdevice"
	"gochat/tokenizer"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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

// goldenCore is a case's nanochat_core.json: its runs by name ("all", "max_per_task_25").
type goldenCore map[string]struct {
	Core  float64 `json:"core_metric"`
	Tasks map[string]struct {
		Accuracy float64 `json:"accuracy"`
		Centered float64 `json:"centered"`
		Items    []struct {
			Line         int       `json:"line"`
			Correct      bool      `json:"correct"`
			MeanLosses   []float64 `json:"mean_losses"`
			FewshotLines []int     `json:"fewshot_lines"`
		} `json:"items"`
	} `json:"tasks"`
}

func readGoldenCore(t testing.TB, dir string) goldenCore {
	raw, err := os.ReadFile(filepath.Join(dir, "nanochat_core.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g goldenCore
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	if len(g) == 0 {
		t.Fatalf("%s: no runs in nanochat_core.json", dir)
	}
	return g
}

// runMaxPerTask is the max_per_task a golden run was made with: 0 for "all", N for
// "max_per_task_N".
func runMaxPerTask(t testing.TB, run string) int {
	if run == "all" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimPrefix(run, "max_per_task_"))
	if err != nil || n <= 0 {
		t.Fatalf("golden run %q: want all or max_per_task_N", run)
	}
	return n
}

// loadGoldenModel loads a case's model (its last step) with nanochat's bfloat16 rotary
// tables, and its tokenizer.
func loadGoldenModel(t testing.TB, dir string) (*graph.Cached, *tokenizer.Tokenizer) {
	modelDir := filepath.Join(dir, "model")
	step, err := checkpoint.LastStep(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Load(modelDir, step, false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.NewCached(ck.Meta.ModelConfig, ck.Weights, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	m.NanochatRotary()
	tok, err := tokenizer.Load(filepath.Join(modelDir, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

func openBundle(t testing.TB, dir string) *CoreBundle {
	b, err := OpenCoreBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCoreOrderAndFewShotMatchNanochat: for every task of each golden bundle and every run
// (whole, cut to 25 items), the items nanochat evaluated, in its order, and the few-shot
// examples each was shown.
func TestCoreOrderAndFewShotMatchNanochat(t *testing.T) {
	for _, dir := range goldenCoreCases(t) {
		b := openBundle(t, filepath.Join(dir, "bundle"))
		for run, want := range readGoldenCore(t, dir) {
			maxPerTask := runMaxPerTask(t, run)
			if len(want.Tasks) != len(b.Tasks) {
				t.Fatalf("%s %s: %d tasks in the golden file, %d in core.yaml", dir, run, len(want.Tasks), len(b.Tasks))
			}
			for i, task := range b.Tasks {
				order := CoreOrder(len(b.Items[i]), maxPerTask)
				var lines []int
				for _, it := range want.Tasks[task.Label].Items {
					lines = append(lines, it.Line)
				}
				if !slices.Equal(order, lines) {
					t.Fatalf("%s %s %s: order %v, nanochat's %v", dir, run, task.Label, order, lines)
				}
				for idx, it := range want.Tasks[task.Label].Items {
					if it.FewshotLines == nil {
						continue
					}
					var got []int
					for _, p := range FewShot(len(order), idx, task.NumFewshot[0]) {
						got = append(got, order[p])
					}
					if !slices.Equal(got, it.FewshotLines) {
						t.Errorf("%s %s %s item %d: few-shot lines %v, nanochat's %v", dir, run, task.Label, idx, got, it.FewshotLines)
					}
				}
			}
		}
	}
}

// TestCoreScoresMatchNanochat runs CORE, batched, on each golden bundle with its model,
// whole and cut as each golden run was, rotating with bfloat16 tables as nanochat does:
// each option's mean loss within 1e-4 of nanochat's (relative; measured on the d2 case:
// all but 2 options within 1e-5, float32 kernels summing in other orders), every item's
// verdict, each task's accuracy and centred accuracy, and CORE within 1e-6. (With gochat's
// float32 tables the verdicts and CORE are the same and the mean losses differ by up to
// 2.3e-4.)
func TestCoreScoresMatchNanochat(t *testing.T) {
	for _, dir := range goldenCoreCases(t) {
		for _, device := range []bool{false, true} {
			m, tok := loadGoldenModel(t, dir)
			name := dir
			if device { // placed on a device whose memory the host reaches only by copies
				if err := m.Place(hostdevice.New(nil)); err != nil {
					t.Fatal(err)
				}
				name += " on the device"
			}
			coreScoresMatch(t, dir, name, m, tok)
		}
	}
}

// coreScoresMatch scores the CORE golden case in dir with m, against nanochat's, naming the
// case name in its errors.
func coreScoresMatch(t *testing.T, dir, name string, m *graph.Cached, tok *tokenizer.Tokenizer) {
	t.Helper()
	b := openBundle(t, filepath.Join(dir, "bundle"))
	for run, want := range readGoldenCore(t, dir) {
		res, err := RunCore(context.Background(), m, tok, b, CoreOptions{MaxPerTask: runMaxPerTask(t, run), BatchTokens: 2048})
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range res.Tasks {
			w := want.Tasks[got.Task.Label]
			if len(got.Items) != len(w.Items) {
				t.Fatalf("%s %s %s: %d items, nanochat %d", name, run, got.Task.Label, len(got.Items), len(w.Items))
			}
			for idx, it := range got.Items {
				wi := w.Items[idx]
				if it.Line != wi.Line || it.Correct != wi.Correct || len(it.MeanLosses) != len(wi.MeanLosses) {
					t.Errorf("%s %s %s item %d: line %d correct %v with %d losses, nanochat line %d %v with %d",
						name, run, got.Task.Label, idx, it.Line, it.Correct, len(it.MeanLosses), wi.Line, wi.Correct, len(wi.MeanLosses))
					continue
				}
				for i, l := range it.MeanLosses {
					if math.Abs(l-wi.MeanLosses[i]) > 1e-4*math.Abs(wi.MeanLosses[i]) {
						t.Errorf("%s %s %s line %d option %d: mean loss %.7f, nanochat %.7f", name, run, got.Task.Label, it.Line, i, l, wi.MeanLosses[i])
					}
				}
			}
			if math.Abs(got.Accuracy-w.Accuracy) > 1e-6 || math.Abs(got.Centered-w.Centered) > 1e-6 {
				t.Errorf("%s %s %s: accuracy %.6f centred %.6f, nanochat %.6f %.6f", name, run, got.Task.Label, got.Accuracy, got.Centered, w.Accuracy, w.Centered)
			}
		}
		if math.Abs(res.Core-want.Core) > 1e-6 {
			t.Errorf("%s %s: CORE %.6f, nanochat %.6f", name, run, res.Core, want.Core)
		}
	}
}

// TestCoreBatchedEqualsOneAtATime: on each golden bundle, every item, scoring the items one
// at a time (nanochat's way), a few a forward pass and many a pass gives the same verdicts
// and mean losses within 1e-6 (relative; on the CPU engine they are equal bit for bit).
func TestCoreBatchedEqualsOneAtATime(t *testing.T) {
	for _, dir := range goldenCoreCases(t) {
		m, tok := loadGoldenModel(t, dir)
		b := openBundle(t, filepath.Join(dir, "bundle"))
		var runs []*CoreResult
		budgets := []int{1, 700, 8192}
		for _, budget := range budgets {
			res, err := RunCore(context.Background(), m, tok, b, CoreOptions{BatchTokens: budget})
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, res)
		}
		one := runs[0]
		for r, res := range runs[1:] {
			for i, task := range res.Tasks {
				for k, it := range task.Items {
					want := one.Tasks[i].Items[k]
					if it.Line != want.Line || it.Correct != want.Correct || len(it.MeanLosses) != len(want.MeanLosses) {
						t.Fatalf("%s, %d tokens a pass: %s item %d: %+v, one at a time %+v", dir, budgets[r+1], task.Task.Label, k, it, want)
					}
					for o, l := range it.MeanLosses {
						if math.Abs(l-want.MeanLosses[o]) > 1e-6*math.Abs(want.MeanLosses[o]) {
							t.Errorf("%s, %d tokens a pass: %s line %d option %d: mean loss %.9f, one at a time %.9f", dir, budgets[r+1], task.Task.Label, it.Line, o, l, want.MeanLosses[o])
						}
					}
				}
			}
			if math.Abs(res.Core-one.Core) > 1e-6 {
				t.Errorf("%s, %d tokens a pass: CORE %v, one at a time %v", dir, budgets[r+1], res.Core, one.Core)
			}
		}
	}
}

// TestCoreBatches: passes stay within the token budget (an item larger than it alone),
// every item is in exactly one, and the rows of a pass are sorted by length.
func TestCoreBatches(t *testing.T) {
	var cases []*CoreCase
	for _, n := range []int{5, 3, 9, 3, 40, 7, 1, 5} {
		seq := make([]int, n)
		cases = append(cases, &CoreCase{Seqs: [][]int{seq, seq[:n/2+1]}})
	}
	batches := coreBatches(cases, 20)
	seen := map[int]bool{}
	last := 0
	for _, batch := range batches {
		rows, width := 0, 0
		for _, k := range batch {
			if seen[k] {
				t.Fatalf("item %d twice in %v", k, batches)
			}
			seen[k] = true
			rows, width = rows+len(cases[k].Seqs), max(width, cases[k].Longest())
			if cases[k].Longest() < last {
				t.Errorf("%v: not sorted by length", batches)
			}
			last = cases[k].Longest()
		}
		if rows*width > 20 && len(batch) > 1 {
			t.Errorf("batch %v: %d rows × %d tokens exceed 20", batch, rows, width)
		}
	}
	if len(seen) != len(cases) {
		t.Errorf("%d of %d items batched", len(seen), len(cases))
	}
	if got := fmt.Sprint(batches); got != "[[6 1 3] [0 7] [5] [2] [4]]" {
		t.Errorf("batches %s", got)
	}
}

// TestCoreStopsWhenCancelled: a cancelled run returns the tasks it finished and the
// context's error.
func TestCoreStopsWhenCancelled(t *testing.T) {
	dir := goldenCoreCases(t)[0]
	m, tok := loadGoldenModel(t, dir)
	b := openBundle(t, filepath.Join(dir, "bundle"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := RunCore(ctx, m, tok, b, CoreOptions{MaxPerTask: 25, BatchTokens: 1, TaskDone: func(CoreTaskResult) { cancel() }})
	if !errors.Is(err, context.Canceled) || res == nil || len(res.Tasks) != 1 || len(res.Tasks[0].Items) != 25 {
		t.Fatalf("after cancelling at the first task's end: %v, %+v", err, res)
	}
}

// TestCoreBadBundles: each fault of a bundle is an error naming the file (and the line)
// at fault.
func TestCoreBadBundles(t *testing.T) {
	dir := goldenCoreCases(t)[0]
	m, tok := loadGoldenModel(t, dir)
	for _, c := range []struct {
		name   string
		break_ func(bundle string)
		want   string
	}{
		{"missing folder", func(b string) { os.RemoveAll(b) }, "no eval bundle at"},
		{"missing core.yaml", func(b string) { os.Remove(filepath.Join(b, "core.yaml")) }, "core.yaml: no such file"},
		{"corrupt core.yaml", func(b string) { os.WriteFile(filepath.Join(b, "core.yaml"), []byte("icl_tasks: [label: {"), 0o644) }, "core.yaml: yaml:"},
		{"no tasks", func(b string) { os.WriteFile(filepath.Join(b, "core.yaml"), []byte("icl_tasks: []\n"), 0o644) }, "core.yaml lists no icl_tasks"},
		{"missing jsonl", func(b string) { os.Remove(filepath.Join(b, "eval_data/go/go_prev_line.jsonl")) }, "go_prev_line.jsonl: no such file"},
		{"malformed line", func(b string) { appendLine(b, "go/go_keyword.jsonl", `{"query": "x", "choices": ["a"`) }, "go_keyword.jsonl:61: unexpected end of JSON input"},
		{"gold out of range", func(b string) {
			appendLine(b, "go/go_next_line.jsonl", `{"query": "x", "choices": ["a", "b"], "gold": 2}`)
		}, "go_next_line.jsonl:61: gold 2 is not one of the 2 choices"},
		{"no options", func(b string) { appendLine(b, "go/go_prev_line.jsonl", `{"continuation": "x", "gold": 0}`) }, "go_prev_line.jsonl:61: a schema item without context_options"},
		{"missing baseline", func(b string) { editFile(b, "eval_meta_data.csv", "go_keyword,", "go_keywords,") }, "eval_meta_data.csv has no random baseline for task go_keyword"},
		{"duplicate task", func(b string) { editFile(b, "core.yaml", "label: go_keyword", "label: go_next_line") }, "lists task go_next_line twice"},
	} {
		bundle := copyBundle(t, filepath.Join(dir, "bundle"))
		c.break_(bundle)
		_, err := OpenCoreBundle(bundle)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}

	// Faults found when a task's items are prepared: a prompt beyond the model's reach, and
	// more few-shot examples than the other items evaluated.
	bundle := copyBundle(t, filepath.Join(dir, "bundle"))
	appendLine(bundle, "go/go_identifier.jsonl", fmt.Sprintf(`{"context": %q, "continuation": "x"}`, strings.Repeat("func main() { return } ", 2000)))
	b := openBundle(t, bundle)
	if _, err := RunCore(context.Background(), m, tok, b, CoreOptions{BatchTokens: 4096}); err == nil ||
		!strings.Contains(err.Error(), "go_identifier.jsonl:61: the item's prompt (with 0 few-shot examples) is") ||
		!strings.Contains(err.Error(), "more than the 2560 positions the model reaches") {
		t.Errorf("a prompt of thousands of tokens: %v", err)
	}
	b = openBundle(t, filepath.Join(dir, "bundle"))
	if _, err := RunCore(context.Background(), m, tok, b, CoreOptions{MaxPerTask: 3, BatchTokens: 4096}); err == nil ||
		!strings.Contains(err.Error(), "task go_keyword shows each item 3 others as few-shot examples but is evaluated on 3 items") {
		t.Errorf("3 shots out of 3 items: %v", err)
	}
}

// copyBundle copies a bundle folder into a temporary one.
func copyBundle(t *testing.T, src string) string {
	dst := filepath.Join(t.TempDir(), "bundle")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// appendLine adds a line to a task's JSONL file of bundle.
func appendLine(bundle, uri, line string) {
	f, err := os.OpenFile(filepath.Join(bundle, "eval_data", uri), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	f.WriteString(line + "\n")
}

// editFile replaces old with new in a file of bundle.
func editFile(bundle, name, old, new string) {
	path := filepath.Join(bundle, name)
	raw, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(raw), old) {
		panic(fmt.Sprintf("%s lacks %q (%v)", path, old, err))
	}
	os.WriteFile(path, []byte(strings.Replace(string(raw), old, new, 1)), 0o644)
}

// TestCoreJudgePicksAsPython: an option with no tokens of its own has a NaN mean loss,
// which wins only in first place, as Python's min and list.index pick over nanochat's
// list; of equal losses the first wins.
func TestCoreJudgePicksAsPython(t *testing.T) {
	const T, V = 3, 2
	uniform := make([]float32, 3*T*V) // every loss ln 2
	for _, c := range []struct {
		seqs  [][]int
		gold  int
		right bool
	}{
		{[][]int{{0, 1}, {0, 1, 1}}, 0, true},             // NaN first: it wins
		{[][]int{{0, 1, 1}, {0, 1}}, 1, false},            // NaN second: it never wins
		{[][]int{{0, 1, 0}, {0, 1, 1}, {0, 1}}, 1, false}, // equal losses: the first wins
		{[][]int{{0, 1, 0}, {0, 1, 1}, {0, 1}}, 0, true},
	} {
		cs := &CoreCase{Kind: MultipleChoice, Seqs: c.seqs, Starts: make([]int, len(c.seqs)), Gold: c.gold}
		for i := range cs.Starts {
			cs.Starts[i] = commonLength(c.seqs, false)
		}
		v, err := cs.judge(graph.HostLogits(uniform, V), 0, T)
		if err != nil {
			t.Fatal(err)
		}
		if v.Correct != c.right {
			t.Errorf("%v gold %d: correct %v, want %v (mean losses %v)", c.seqs, c.gold, v.Correct, c.right, v.MeanLosses)
		}
		for i, s := range c.seqs {
			if empty := len(s) == cs.Starts[i]; empty != math.IsNaN(v.MeanLosses[i]) || !empty && math.Abs(v.MeanLosses[i]-math.Ln2) > 1e-12 {
				t.Errorf("%v: option %d's mean loss %v", c.seqs, i, v.MeanLosses[i])
			}
		}
	}
}
