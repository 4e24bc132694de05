// Package eval holds the evaluations of nanochat. CORE (base_eval.py and core_eval.py) is
// in core.go: the order a task's items are evaluated in and the few-shot examples each is
// shown (CPython's random module decides both), the prompts, and the scoring of a batch of
// items in one forward pass; corerun.go reads a bundle and runs its tasks.
package eval

import (
	"bytes"
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
				return nil, fmt.Errorf("a few-shot example's gold %d of %d choices", ex.Gold, len(ex.Choices))
			}
			shots.WriteString(ex.Query + delimiter + ex.Choices[ex.Gold])
		case Schema:
			if ex.Gold < 0 || ex.Gold >= len(ex.ContextOptions) {
				return nil, fmt.Errorf("a few-shot example's gold %d of %d options", ex.Gold, len(ex.ContextOptions))
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
		return nil, fmt.Errorf("unknown task type %q", kind)
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("an item with nothing to score")
	}
	return prompts, nil
}

// pyStrip is Python's str.strip(): Go's white space and the four separators \x1c..\x1f.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) })
}

// CoreCase is an item made ready for the model: the token sequences core_eval.py forwards
// (each prompt encoded without special tokens after <|bos|>; for language modelling only
// the prompt with its continuation) and, for each, the first position whose token is
// scored. Multiple choice scores each choice's tokens after the prompts' common prefix,
// schema the continuation's tokens (the common suffix) after each context, language
// modelling the continuation's tokens after the prompt without it. An option with no
// tokens of its own (a choice that is another's prefix) scores none: as in nanochat, its
// mean loss is the mean of nothing, NaN.
type CoreCase struct {
	Kind   string
	Seqs   [][]int
	Starts []int
	Gold   int
}

// NewCoreCase renders an item's prompts (CorePrompts), encodes them and finds what each
// sequence scores.
func NewCoreCase(tok *tokenizer.Tokenizer, kind string, item CoreItem, delimiter string, fewshot []CoreItem) (*CoreCase, error) {
	prompts, err := CorePrompts(kind, item, delimiter, fewshot)
	if err != nil {
		return nil, err
	}
	bos, err := tok.Special("<|bos|>")
	if err != nil {
		return nil, err
	}
	seqs := make([][]int, len(prompts))
	for i, p := range prompts {
		seqs[i] = append([]int{bos}, tok.Encode(p)...)
	}
	c := &CoreCase{Kind: kind, Seqs: seqs, Starts: make([]int, len(seqs)), Gold: item.Gold}
	switch kind {
	case LanguageModeling:
		without, with := seqs[0], seqs[1]
		if len(without) >= len(with) || !slices.Equal(without, with[:len(without)]) {
			return nil, fmt.Errorf("the prompt without its continuation does not encode to a prefix of the prompt with it")
		}
		c.Seqs, c.Starts = [][]int{with}, []int{len(without)}
	case MultipleChoice:
		prefix := commonLength(seqs, false)
		for i := range c.Starts {
			c.Starts[i] = prefix
		}
	case Schema:
		suffix := commonLength(seqs, true)
		for i, s := range seqs {
			if c.Starts[i] = len(s) - suffix; c.Starts[i] == 0 { // options all alike: nothing scored
				c.Starts[i] = len(s)
			}
		}
	}
	return c, nil
}

// Longest is the length of the case's longest sequence.
func (c *CoreCase) Longest() int {
	n := 0
	for _, s := range c.Seqs {
		n = max(n, len(s))
	}
	return n
}

// CoreVerdict is how an item scored: whether it is right and, for multiple choice and
// schema, each option's mean loss (nil for language modelling).
type CoreVerdict struct {
	Correct    bool
	MeanLosses []float64
}

// ScoreCore scores cases on m in one forward pass, as core_eval.py scores each: their
// sequences are the rows of one batch, right-padded with <|bos|> to the longest (causal
// attention keeps every row's logits blind to the padding after it, whose logits are
// ignored). Multiple choice and schema are right when the option of lowest mean loss is
// gold, chosen as Python's min and list.index choose it: the first of equals, and a NaN
// never wins unless it comes first. Language modelling is right when greedy decoding
// writes every continuation token.
func ScoreCore(m *graph.Cached, cases []*CoreCase) ([]CoreVerdict, error) {
	B, T := 0, 0
	for _, c := range cases {
		B += len(c.Seqs)
		T = max(T, c.Longest())
	}
	if B == 0 {
		return nil, nil
	}
	ids := make([]int, 0, B*T)
	for _, c := range cases {
		for _, s := range c.Seqs {
			ids = append(ids, s...)
			for range T - len(s) {
				ids = append(ids, s[0])
			}
		}
	}
	verdicts := make([]CoreVerdict, len(cases))
	err := m.Score(ids, B, T, func(logits graph.Logits) error {
		row := 0
		for k, c := range cases {
			var err error
			if verdicts[k], err = c.judge(logits, row, T); err != nil {
				return err
			}
			row += len(c.Seqs)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	return verdicts, nil
}

// judge is the verdict on c given the logits of its sequences' positions: sequence i's
// T positions are rows (first+i)·T on. It reads the rows of the answers' positions only.
func (c *CoreCase) judge(logits graph.Logits, first, T int) (CoreVerdict, error) {
	V := logits.Vocab()
	span := func(i int) ([]float32, int, error) { // sequence i's rows from its answer's first prediction
		from := (first+i)*T + c.Starts[i] - 1
		rows, err := logits.Rows(from, (first+i)*T+len(c.Seqs[i])-1)
		return rows, c.Starts[i] - 1, err
	}
	if c.Kind == LanguageModeling {
		s := c.Seqs[0]
		rows, p0, err := span(0)
		if err != nil {
			return CoreVerdict{}, err
		}
		for p := p0; p < len(s)-1; p++ {
			if argmax(rows[(p-p0)*V:(p-p0+1)*V]) != s[p+1] {
				return CoreVerdict{}, nil
			}
		}
		return CoreVerdict{Correct: true}, nil
	}
	losses := make([]float64, len(c.Seqs))
	best := 0
	for i, s := range c.Seqs {
		rows, p0, err := span(i)
		if err != nil {
			return CoreVerdict{}, err
		}
		var sum float64
		for p := p0; p < len(s)-1; p++ {
			sum += crossEntropy(rows[(p-p0)*V:(p-p0+1)*V], s[p+1])
		}
		if losses[i] = sum / float64(len(s)-c.Starts[i]); losses[i] < losses[best] {
			best = i
		}
	}
	return CoreVerdict{Correct: best == c.Gold, MeanLosses: losses}, nil
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

// ReadCoreItems reads a task's JSONL file, a line an item, and checks that each item has
// what a task of its kind scores: choices (multiple choice) or context options (schema)
// with gold among them.
func ReadCoreItems(path, kind string) ([]CoreItem, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("core: %s holds no items", path)
	}
	var items []CoreItem
	for i, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		var it CoreItem
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			return nil, fmt.Errorf("core: %s:%d: %w", path, i+1, err)
		}
		if err := checkItem(kind, it); err != nil {
			return nil, fmt.Errorf("core: %s:%d: %w", path, i+1, err)
		}
		items = append(items, it)
	}
	return items, nil
}

// checkItem says what an item of kind lacks.
func checkItem(kind string, it CoreItem) error {
	options, name := it.Choices, "choices"
	switch kind {
	case LanguageModeling:
		return nil
	case Schema:
		options, name = it.ContextOptions, "context_options"
	}
	if len(options) == 0 {
		return fmt.Errorf("a %s item without %s", kind, name)
	}
	if it.Gold < 0 || it.Gold >= len(options) {
		return fmt.Errorf("gold %d is not one of the %d %s", it.Gold, len(options), name)
	}
	return nil
}

// ReadBaselines reads a bundle's eval_meta_data.csv: each task's random baseline, percent.
func ReadBaselines(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("core: %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("core: %s is empty", path)
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
		if _, seen := out[r[task]]; !seen { // the first row of a task counts, as pandas' lookup takes it
			out[r[task]] = v
		}
	}
	return out, nil
}
