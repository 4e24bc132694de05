package eval

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gochat/graph"
	"gochat/tokenizer"
)

// CoreBundle is an eval bundle in nanochat's layout: core.yaml's tasks, each with its random
// baseline from eval_meta_data.csv and its items from eval_data/<dataset_uri>.
type CoreBundle struct {
	Dir       string
	Tasks     []CoreTask
	Baselines []float64    // each task's random baseline, percent
	Items     [][]CoreItem // each task's items, in file order
	files     []string     // each task's JSONL file
}

// OpenCoreBundle reads the bundle in dir, every task's items included, so that a missing or
// malformed file is reported before any item is scored.
func OpenCoreBundle(dir string) (*CoreBundle, error) {
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("core: no eval bundle at %s", dir)
	}
	yamlPath := filepath.Join(dir, "core.yaml")
	tasks, err := ReadCoreTasks(yamlPath)
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("core: %s lists no icl_tasks", yamlPath)
	}
	csvPath := filepath.Join(dir, "eval_meta_data.csv")
	baselines, err := ReadBaselines(csvPath)
	if err != nil {
		return nil, err
	}
	b := &CoreBundle{Dir: dir, Tasks: tasks}
	for i, t := range tasks {
		if slices.ContainsFunc(tasks[:i], func(u CoreTask) bool { return u.Label == t.Label }) {
			return nil, fmt.Errorf("core: %s lists task %s twice", yamlPath, t.Label)
		}
		baseline, ok := baselines[t.Label]
		if !ok {
			return nil, fmt.Errorf("core: %s has no random baseline for task %s", csvPath, t.Label)
		}
		file := filepath.Join(dir, "eval_data", t.DatasetURI)
		items, err := ReadCoreItems(file, t.Kind)
		if err != nil {
			return nil, err
		}
		b.Baselines = append(b.Baselines, baseline)
		b.Items = append(b.Items, items)
		b.files = append(b.files, file)
	}
	return b, nil
}

// CoreOptions control RunCore.
type CoreOptions struct {
	// MaxPerTask cuts each task to its first MaxPerTask items in CORE's order (nanochat's
	// max_per_task); ≤ 0 evaluates every item.
	MaxPerTask int
	// BatchTokens bounds a forward pass: its rows (every option of each item in it) times
	// the longest row, padding included. An item larger than that runs alone, so 1 scores
	// the items one at a time, as nanochat does. The pass's logits take BatchTokens ×
	// vocabulary × 4 bytes.
	BatchTokens int
	// Progress, if set, is called after each forward pass with the items scored so far and
	// the items of every task.
	Progress func(done, total int)
	// TaskDone, if set, is called as each task is finished.
	TaskDone func(CoreTaskResult)
}

// CoreResult is CORE over a bundle: the mean of the tasks' centred accuracies.
type CoreResult struct {
	Core  float64
	Tasks []CoreTaskResult // in core.yaml's order
}

// CoreTaskResult is one task's outcome.
type CoreTaskResult struct {
	Task               CoreTask
	Accuracy, Centered float64
	Items              []CoreItemResult // in evaluation order (CoreOrder)
	Duration           time.Duration    // from reading the items to the last verdict
}

// CoreItemResult is an item's verdict; Line is its 0-based line in the task's JSONL file.
type CoreItemResult struct {
	Line int
	CoreVerdict
}

// RunCore evaluates m on every task of b as nanochat's base_eval does, items in CoreOrder
// with their FewShot examples, scoring several items a forward pass (opt.BatchTokens): the
// verdicts are those of scoring each alone. When ctx is cancelled it stops after the
// forward pass under way and returns the tasks finished, with ctx's error.
func RunCore(ctx context.Context, m *graph.Cached, tok *tokenizer.Tokenizer, b *CoreBundle, opt CoreOptions) (*CoreResult, error) {
	orders := make([][]int, len(b.Tasks))
	total := 0
	for i, t := range b.Tasks {
		orders[i] = CoreOrder(len(b.Items[i]), opt.MaxPerTask)
		if shots := t.NumFewshot[0]; shots > len(orders[i])-1 {
			return nil, fmt.Errorf("core: task %s shows each item %d others as few-shot examples but is evaluated on %d items", t.Label, shots, len(orders[i]))
		}
		total += len(orders[i])
	}
	res := &CoreResult{}
	done := 0
	var centred float64
	for i, t := range b.Tasks {
		start := time.Now()
		cases, err := b.cases(i, orders[i], tok, m.Config.RotaryLen())
		if err != nil {
			return res, err
		}
		verdicts := make([]CoreVerdict, len(cases))
		for _, batch := range coreBatches(cases, opt.BatchTokens) {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			group := make([]*CoreCase, len(batch))
			for j, k := range batch {
				group[j] = cases[k]
			}
			v, err := ScoreCore(m, group)
			if err != nil {
				return res, fmt.Errorf("core: task %s: %w", t.Label, err)
			}
			for j, k := range batch {
				verdicts[k] = v[j]
			}
			if done += len(batch); opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
		tr := CoreTaskResult{Task: t, Items: make([]CoreItemResult, len(cases))}
		right := 0
		for k, v := range verdicts {
			tr.Items[k] = CoreItemResult{Line: orders[i][k], CoreVerdict: v}
			if v.Correct {
				right++
			}
		}
		tr.Accuracy = float64(right) / float64(len(cases))
		tr.Centered = Centered(tr.Accuracy, b.Baselines[i])
		tr.Duration = time.Since(start)
		res.Tasks = append(res.Tasks, tr)
		centred += tr.Centered
		if opt.TaskDone != nil {
			opt.TaskDone(tr)
		}
	}
	res.Core = centred / float64(len(b.Tasks))
	return res, nil
}

// cases prepares task i's items in order, each with its few-shot examples; an item longer
// than the maxLen positions the model reaches is refused (nanochat's model stops there too:
// its rotary table holds 10 × sequence_len positions), naming its file and line.
func (b *CoreBundle) cases(i int, order []int, tok *tokenizer.Tokenizer, maxLen int) ([]*CoreCase, error) {
	t, items := b.Tasks[i], b.Items[i]
	cases := make([]*CoreCase, len(order))
	for idx, line := range order {
		var shots []CoreItem
		for _, p := range FewShot(len(order), idx, t.NumFewshot[0]) {
			shots = append(shots, items[order[p]])
		}
		c, err := NewCoreCase(tok, t.Kind, items[line], t.Delimiter, shots)
		if err != nil {
			return nil, fmt.Errorf("core: %s:%d: %w", b.files[i], line+1, err)
		}
		if n := c.Longest(); n > maxLen {
			return nil, fmt.Errorf("core: %s:%d: the item's prompt (with %d few-shot examples) is %d tokens, more than the %d positions the model reaches (10 × its sequence_len)",
				b.files[i], line+1, len(shots), n, maxLen)
		}
		cases[idx] = c
	}
	return cases, nil
}

// coreBatches groups cases into forward passes of at most budget tokens (rows × the longest
// row), the shortest cases first so that the rows of a pass have similar lengths and little
// padding; a case larger than budget has a pass of its own. A batch lists indices of cases.
func coreBatches(cases []*CoreCase, budget int) [][]int {
	order := make([]int, len(cases))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(cases[a].Longest(), cases[b].Longest()) })
	var batches [][]int
	var batch []int
	rows := 0
	for _, k := range order {
		c := cases[k]
		// Sorted by length, c's rows are the longest of the batch so far.
		if len(batch) > 0 && (rows+len(c.Seqs))*c.Longest() > budget {
			batches, batch, rows = append(batches, batch), nil, 0
		}
		batch = append(batch, k)
		rows += len(c.Seqs)
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	return batches
}
