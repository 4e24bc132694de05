package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gochat/eval"
	"gochat/eval/sandbox"
	"gochat/internal/atomicfile"
	"gochat/sampler"
	"gochat/tasks"

	"github.com/urfave/cli/v2"
)

// chatEvalTask is how `eval chat` evaluates one of eval.ChatTasks: the dataset and split of
// tasks.Catalog that nanochat evaluates it on and, for an open-ended task, its judge (nil:
// a multiple-choice task, scored by eval.Categorical).
type chatEvalTask struct {
	dataset, split string
	judge          eval.Judge
}

// chatEvalTasks are how each of eval.ChatTasks is evaluated.
var chatEvalTasks = map[string]chatEvalTask{
	"ARC-Easy":      {"arc-easy", "test", nil},
	"ARC-Challenge": {"arc-challenge", "test", nil},
	"MMLU":          {"mmlu", "test", nil}, // the "all" config
	"GSM8K":         {"gsm8k", "test", eval.JudgeGSM8K},
	"HumanEval":     {"humaneval", "test", eval.JudgeHumanEval},
}

// chatEvalSeed is the sampling's seed, nanochat's Engine.generate default.
const chatEvalSeed = 42

func chatEvalCommand() *cli.Command {
	return &cli.Command{
		Name:  "chat",
		Usage: "a chat model's accuracy on ARC, MMLU, GSM8K and HumanEval, and ChatCORE (nanochat's chat_eval)",
		Description: "Evaluates the tasks of -a (several separated by | or commas; default all) on the splits nanochat\n" +
			"evaluates, each shuffled as nanochat shuffles it before --max-problems cuts it. ARC and MMLU take\n" +
			"the answer letter of largest logit, --batch-size problems per forward pass; GSM8K and HumanEval\n" +
			"sample --num-samples replies (-t, -k, -m) with the calculator, and a problem passes when any is\n" +
			"right. ChatCORE, the mean accuracy centred on chance, needs all five tasks. The datasets come\n" +
			"from `gochat data download --task NAME` under $GOCHAT_HOME/tasks. Ctrl-C stops after the batch\n" +
			"or problem under way and keeps what was evaluated.",
		Flags: append(generationFlags("sft", 0, 512),
			&cli.StringFlag{Name: "task-name", Aliases: []string{"a"}, Usage: "tasks: " + strings.Join(eval.ChatTasks, ", ") + " (default: all)"},
			&cli.IntFlag{Name: "max-problems", Aliases: []string{"x"}, Usage: "problems per task at most (0: all)"},
			&cli.IntFlag{Name: "num-samples", Aliases: []string{"n"}, Value: 1, Usage: "replies sampled per open-ended problem"},
			&cli.IntFlag{Name: "batch-size", Aliases: []string{"b"}, Value: 8, Usage: "multiple-choice problems per forward pass"},
			&cli.StringFlag{Name: "json", Usage: "write the accuracies and every problem's outcome to `FILE`"}),
		Action: runChatEval,
	}
}

// chatEvalReport is what --json writes: the checkpoint, the settings, each task evaluated
// (in order) with its problems, and ChatCORE when all five were.
type chatEvalReport struct {
	Checkpoint  string            `json:"checkpoint"`
	Source      string            `json:"source"`
	Settings    map[string]any    `json:"settings"`
	Tasks       []chatTaskOutcome `json:"tasks"`
	ChatCORE    *float64          `json:"chatcore,omitempty"`
	Interrupted bool              `json:"interrupted"`
}

// chatTaskOutcome is one task's evaluation.
type chatTaskOutcome struct {
	Name     string             `json:"name"`
	Accuracy float64            `json:"accuracy"`
	Passed   int                `json:"passed"`
	Total    int                `json:"total"` // problems evaluated
	Seconds  float64            `json:"seconds"`
	Problems []eval.ChatProblem `json:"problems"` // in evaluation order
}

func runChatEval(c *cli.Context) error {
	names, err := chatTaskNames(c.String("task-name"))
	if err != nil {
		return err
	}
	if c.Int("batch-size") < 1 || c.Int("max-problems") < 0 {
		return fmt.Errorf("--batch-size must be positive and --max-problems not negative")
	}
	if n := c.Int("num-samples"); n < 1 || n > sampler.MaxRows {
		return fmt.Errorf("--num-samples must lie in 1..%d, got %d", sampler.MaxRows, n)
	}
	root := filepath.Join(gochatHome(), "tasks") // where `gochat data download --task` puts them
	opened := map[string]tasks.Task{}            // each shuffled as nanochat's task class shuffles it
	for _, name := range names {
		spec := chatEvalTasks[name]
		t, err := tasks.Load(root, spec.dataset, spec.split)
		if err != nil {
			return err
		}
		opened[name] = t
	}
	if slices.Contains(names, "HumanEval") { // find a missing Python before the model runs
		res, err := sandbox.Run(c.Context, "pass", sandbox.Config{})
		if err != nil {
			return fmt.Errorf("HumanEval runs the model's programs: %w", err)
		}
		fmt.Printf("HumanEval's programs run in python3 with %s\n", res.Contained)
	}
	gen, which, err := loadEngine(c)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", which)
	report := chatEvalReport{Checkpoint: which, Source: c.String("source"), Settings: map[string]any{
		"max_problems": c.Int("max-problems"), "num_samples": c.Int("num-samples"), "max_new_tokens": c.Int("max-tokens"),
		"temperature": c.Float64("temperature"), "top_k": c.Int("top-k"), "batch_size": c.Int("batch-size")}}
	settings := sampler.Settings{MaxTokens: c.Int("max-tokens"), Temperature: c.Float64("temperature"), TopK: c.Int("top-k"),
		Seed: chatEvalSeed, Rows: c.Int("num-samples")}
	ctx, stop := interruptible(c.Context, "stopping after the batch or problem under way")
	defer stop()
	accuracy := map[string]float64{}
	for _, name := range names {
		task, spec := opened[name], chatEvalTasks[name]
		n := task.Len()
		if limit := c.Int("max-problems"); limit > 0 {
			n = min(n, limit)
		}
		fmt.Printf("%s: %d of %d problems (%s %s)\n", name, n, task.Len(), spec.dataset, spec.split)
		start := time.Now()
		bar := progressBar("problems", 1, start)
		var res eval.ChatResult
		if spec.judge == nil {
			res, err = eval.Categorical(ctx, gen.Model, gen.Tok, task, c.Int("batch-size"), n, bar)
		} else {
			res, err = eval.Generative(ctx, gen, task, spec.judge, settings, n, bar)
		}
		fmt.Fprintln(os.Stderr)
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", name, err)
		}
		elapsed := time.Since(start)
		done := len(res.Problems)
		if err != nil {
			fmt.Printf("Interrupted after %d of %d problems: %d/%d (%.2f%%) so far\n", done, n, res.Passed, done, 100*res.Accuracy())
		} else {
			fmt.Printf("Final: %d/%d (%.2f%%)\n", res.Passed, done, 100*res.Accuracy())
			fmt.Printf("%s accuracy: %.2f%% (%d problems in %s, %.2f problems/s)\n", name, 100*res.Accuracy(), done,
				elapsed.Round(time.Millisecond), float64(done)/max(elapsed.Seconds(), 1e-9))
			accuracy[name] = res.Accuracy()
		}
		report.Tasks = append(report.Tasks, chatTaskOutcome{Name: name, Accuracy: res.Accuracy(), Passed: res.Passed, Total: done,
			Seconds: elapsed.Seconds(), Problems: res.Problems})
		if err != nil {
			report.Interrupted = true
			break
		}
	}
	if score, ok := eval.ChatCORE(accuracy); ok {
		fmt.Printf("ChatCORE metric: %.4f\n", score)
		report.ChatCORE = &score
	}
	if len(accuracy) > 0 {
		logChatEvalSection(c.String("source"), which, accuracy, report.ChatCORE)
	}
	if path := c.String("json"); path != "" {
		if err := atomicfile.Write(path, func(f *os.File) error {
			enc := json.NewEncoder(f)
			enc.SetIndent("", "  ")
			return enc.Encode(report)
		}); err != nil {
			return err
		}
		fmt.Printf("results written to %s\n", path)
	}
	if report.Interrupted {
		return fmt.Errorf("eval chat: interrupted")
	}
	return nil
}

// chatTaskNames are the tasks -a names (separated by | or commas, in any case), each once
// and in the order given; by default all of eval.ChatTasks.
func chatTaskNames(flag string) ([]string, error) {
	if strings.TrimSpace(flag) == "" {
		return eval.ChatTasks, nil
	}
	var names []string
	for _, asked := range strings.FieldsFunc(flag, func(r rune) bool { return r == '|' || r == ',' }) {
		asked = strings.TrimSpace(asked)
		i := slices.IndexFunc(eval.ChatTasks, func(name string) bool { return strings.EqualFold(name, asked) })
		if i < 0 {
			return nil, fmt.Errorf("--task-name: no task %q; the tasks are %s", asked, strings.Join(eval.ChatTasks, ", "))
		}
		if name := eval.ChatTasks[i]; !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--task-name %q names no task", flag)
	}
	return names, nil
}
