// Package eval holds the evaluations of nanochat: CORE (base_eval.py and core_eval.py), to
// begin with the order it evaluates a task's items in and the few-shot examples each item
// is shown, which CPython's random module decides.
package eval

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"gochat/graph"
	"gochat/internal/pyrandom"
	"gochat/tokenizer"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// CoreOrder is the order CORE evaluates a task's n items in, as indices of its file's
// lines: the items shuffled with CPython's random.Random(1337), then the first maxPerTask
// of them (all when maxPerTask ≤ 0).
func CoreOrder(n, maxPerTask int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	pyrandom.New(1337).Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	if maxPerTask > 0 && maxPerTask < n {
		order = order[:maxPerTask]
	}
	return order
}

// FewShot is the positions, in CoreOrder's order of n items, of the k few-shot examples the
// item at position idx is shown: random.Random(1234 + idx).sample of every other position.
func FewShot(n, idx, k int) []int {
	picked := pyrandom.New(uint64(1234+idx)).Sample(n-1, k)
	for i, p := range picked {
		if p >= idx { // the positions other than idx, in order: idx is skipped
			picked[i] = p + 1
		}
	}
	return picked
}

// The kinds of CORE tasks (core.yaml's icl_task_type).
const (
	MultipleChoice   = "multiple_choice"
	Schema           = "schema"
	LanguageModeling = "language_modeling"
)

// CoreItem is a line of a CORE task's JSONL file, with the fields its kind uses: a query and
// its choices (multiple choice), context options and one continuation (schema), a context
// and its continuation (language modelling); gold is the right choice or option.
type CoreItem struct {
	Query          string   `json:"query"`
	Choices        []string `json:"choices"`
	ContextOptions []string `json:"context_options"`
	Context        string   `json:"context"`
	Continuation   string   `json:"continuation"`
	Gold           int      `json:"gold"`
}

// CorePrompts renders an item's prompts as nanochat's Jinja templates render them: each
// few-shot example completed with its right answer and followed by a blank line, then the
// item; one prompt per choice (multiple choice) or context option (schema), and for
// language modelling the prompt without its continuation (stripped) and with it. Contexts
// of language modelling are trimmed, as the template's trim filter does.
func CorePrompts(kind string, item CoreItem, delimiter string, fewshot []CoreItem) ([]string, error) {
	var shots strings.Builder
	for _, ex := range fewshot {
		switch kind {
		case MultipleChoice:
			if ex.Gold < 0 || ex.Gold >= len(ex.Choices) {
				return nil, fmt.Errorf("core: a few-shot example's gold %d of %d choices", ex.Gold, len(ex.Choices))
			}
			shots.WriteString(ex.Query + delimiter + ex.Choices[ex.Gold])
		case Schema:
			if ex.Gold < 0 || ex.Gold >= len(ex.ContextOptions) {
				return nil, fmt.Errorf("core: a few-shot example's gold %d of %d options", ex.Gold, len(ex.ContextOptions))
			}
			shots.WriteString(ex.ContextOptions[ex.Gold] + delimiter + ex.Continuation)
		case LanguageModeling:
			shots.WriteString(pyStrip(ex.Context) + delimiter + ex.Continuation)
		}
		shots.WriteString("\n\n")
	}
	prefix := shots.String()
	var prompts []string
	switch kind {
	case MultipleChoice:
		for _, c := range item.Choices {
			prompts = append(prompts, prefix+item.Query+delimiter+c)
		}
	case Schema:
		for _, c := range item.ContextOptions {
			prompts = append(prompts, prefix+c+delimiter+item.Continuation)
		}
	case LanguageModeling:
		without := prefix + pyStrip(item.Context) + delimiter
		prompts = []string{pyStrip(without), without + item.Continuation}
	default:
		return nil, fmt.Errorf("core: unknown task type %q", kind)
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("core: an item with nothing to score")
	}
	return prompts, nil
}

// pyStrip is Python's str.strip(): Go's white space and the four separators \x1c..\x1f.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) })
}

// CoreScore scores an item on m as core_eval.py does. Each prompt is encoded without
// special tokens after <|bos|>; multiple choice scores each choice's tokens after the
// prompts' common prefix, schema the continuation's tokens (the common suffix) after each
// context, and the option of lowest mean loss must be gold; language modelling is right
// when greedy decoding writes the continuation's tokens. meanLosses are the options' (nil
// for language modelling).
func CoreScore(m *graph.Cached, tok *tokenizer.Tokenizer, kind string, item CoreItem, delimiter string, fewshot []CoreItem) (correct bool, meanLosses []float64, err error) {
	prompts, err := CorePrompts(kind, item, delimiter, fewshot)
	if err != nil {
		return false, nil, err
	}
	bos, err := tok.Special("<|bos|>")
	if err != nil {
		return false, nil, err
	}
	seqs := make([][]int, len(prompts))
	for i, p := range prompts {
		seqs[i] = append([]int{bos}, tok.Encode(p)...)
	}
	if kind == LanguageModeling {
		without, with := seqs[0], seqs[1]
		if len(without) >= len(with) || !slices.Equal(without, with[:len(without)]) {
			return false, nil, fmt.Errorf("core: the prompt without its continuation does not encode to a prefix of the prompt with it")
		}
		logits, err := forwardAll(m, with)
		if err != nil {
			return false, nil, err
		}
		V := m.Config.VocabSize
		for p := len(without) - 1; p < len(with)-1; p++ {
			if argmax(logits[p*V:(p+1)*V]) != with[p+1] {
				return false, nil, nil
			}
		}
		return true, nil, nil
	}
	starts := make([]int, len(seqs))
	if kind == MultipleChoice {
		prefix := commonLength(seqs, false)
		for i := range starts {
			starts[i] = prefix
		}
	} else {
		suffix := commonLength(seqs, true)
		for i, s := range seqs {
			starts[i] = len(s) - suffix
		}
	}
	meanLosses = make([]float64, len(seqs))
	best := 0
	for i, s := range seqs {
		if starts[i] < 1 || starts[i] >= len(s) {
			return false, nil, fmt.Errorf("core: option %d has no tokens of its own to score", i)
		}
		logits, err := forwardAll(m, s)
		if err != nil {
			return false, nil, err
		}
		V := m.Config.VocabSize
		var sum float64
		for p := starts[i] - 1; p < len(s)-1; p++ {
			sum += crossEntropy(logits[p*V:(p+1)*V], s[p+1])
		}
		if meanLosses[i] = sum / float64(len(s)-starts[i]); meanLosses[i] < meanLosses[best] {
			best = i
		}
	}
	return best == item.Gold, meanLosses, nil
}

// forwardAll is the logits of every position of ids, computed with a fresh cache.
func forwardAll(m *graph.Cached, ids []int) ([]float32, error) {
	return m.ForwardAll(m.NewKVCache(1, len(ids)), ids, len(ids))
}

// commonLength is the length of the prefix (or, fromEnd, the suffix) all seqs share.
func commonLength(seqs [][]int, fromEnd bool) int {
	n := len(seqs[0])
	for _, s := range seqs {
		n = min(n, len(s))
	}
	for i := range n {
		at := func(s []int) int {
			if fromEnd {
				return s[len(s)-1-i]
			}
			return s[i]
		}
		for _, s := range seqs[1:] {
			if at(s) != at(seqs[0]) {
				return i
			}
		}
	}
	return n
}

// crossEntropy is −log softmax(logits)[target], in float64.
func crossEntropy(logits []float32, target int) float64 {
	top := float64(logits[argmax(logits)])
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - top)
	}
	return top + math.Log(sum) - float64(logits[target])
}

// argmax is the index of the largest value, the first of equals.
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Centered is CORE's centred accuracy: 0 at the task's random baseline (percent), 1 at
// every item right.
func Centered(accuracy, baselinePercent float64) float64 {
	return (accuracy - 0.01*baselinePercent) / (1 - 0.01*baselinePercent)
}

// CoreTask is an entry of core.yaml's icl_tasks.
type CoreTask struct {
	Label      string `yaml:"label"`
	DatasetURI string `yaml:"dataset_uri"`
	NumFewshot []int  `yaml:"num_fewshot"`
	Kind       string `yaml:"icl_task_type"`
	Delimiter  string `yaml:"continuation_delimiter"`
}

// ReadCoreTasks reads a bundle's core.yaml.
func ReadCoreTasks(path string) ([]CoreTask, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	var cfg struct {
		Tasks []CoreTask `yaml:"icl_tasks"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("core: %s: %w", path, err)
	}
	for _, t := range cfg.Tasks {
		if t.Label == "" || t.DatasetURI == "" || len(t.NumFewshot) != 1 || t.NumFewshot[0] < 0 {
			return nil, fmt.Errorf("core: %s: task %+v lacks a label, a dataset or one number of shots", path, t)
		}
		switch t.Kind {
		case MultipleChoice, Schema, LanguageModeling:
		default:
			return nil, fmt.Errorf("core: %s: task %s has the unknown type %q", path, t.Label, t.Kind)
		}
	}
	return cfg.Tasks, nil
}

// ReadCoreItems reads a task's JSONL file.
func ReadCoreItems(path string) ([]CoreItem, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	var items []CoreItem
	for i, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		var it CoreItem
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			return nil, fmt.Errorf("core: %s:%d: %w", path, i+1, err)
		}
		items = append(items, it)
	}
	return items, nil
}

// ReadBaselines reads a bundle's eval_meta_data.csv: each task's random baseline, percent.
func ReadBaselines(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 1 {
		return nil, fmt.Errorf("core: %s: %v", path, err)
	}
	task, baseline := slices.Index(rows[0], "Eval Task"), slices.Index(rows[0], "Random baseline")
	if task < 0 || baseline < 0 {
		return nil, fmt.Errorf("core: %s has no Eval Task and Random baseline columns", path)
	}
	out := map[string]float64{}
	for _, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[baseline], 64)
		if err != nil {
			return nil, fmt.Errorf("core: %s: the baseline of %s: %w", path, r[task], err)
		}
		out[r[task]] = v
	}
	return out, nil
}
