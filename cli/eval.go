package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gochat/backend"
	"gochat/checkpoint"
	"gochat/eval"
	"gochat/graph"
	"gochat/internal/atomicfile"
	"gochat/loader"
	"gochat/tokenizer"
	"gochat/train"

	"github.com/urfave/cli/v2"
)

// Flags that choose a checkpoint, as nanochat's scripts name them.
var (
	modelTagFlag = &cli.StringFlag{Name: "model-tag", Aliases: []string{"g"}, Usage: "run folder (default: the largest d<N>)"}
	stepFlag     = &cli.IntFlag{Name: "step", Aliases: []string{"s"}, Value: -1, Usage: "checkpoint step (default: the last)"}
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate checkpoints",
		Subcommands: []*cli.Command{
			evalBPBCommand(),
			evalCoreCommand(),
			chatEvalCommand(),
		},
	}
}

func evalBPBCommand() *cli.Command {
	return &cli.Command{
		Name:  "bpb",
		Usage: "bits per byte of a base checkpoint on the training and validation shards (nanochat's base_loss)",
		Flags: []cli.Flag{modelTagFlag, stepFlag, dataFlag, tokenizerFlag, engineFlag, blasFlag, quantizeFlag,
			checkpointsFlag(), batchFlag(32),
			&cli.IntFlag{Name: "split-tokens", Value: 20 * 524288, Usage: "tokens evaluated per split"},
		},
		Action: runEvalBPB,
	}
}

// chosenStep is the run folder under root and the step that -g and -s choose: by default
// the largest d<N> folder and its last step.
func chosenStep(c *cli.Context, root string) (dir string, step int, err error) {
	tag := c.String("model-tag")
	if tag == "" {
		if tag, err = checkpoint.LargestTag(root); err != nil {
			return "", 0, err
		}
	}
	if err := checkpoint.ValidTag(tag); err != nil {
		return "", 0, fmt.Errorf("--model-tag: %w", err)
	}
	dir = filepath.Join(root, tag)
	steps, _ := checkpoint.Steps(dir)
	if len(steps) == 0 {
		tags, _ := checkpoint.Tags(root)
		if len(tags) == 0 {
			return "", 0, fmt.Errorf("no run %q in %s: it has no checkpoints yet", tag, root)
		}
		return "", 0, fmt.Errorf("no run %q in %s; the runs there: %s", tag, root, strings.Join(tags, ", "))
	}
	if step, err = stepOf(c, dir); err == nil && !slices.Contains(steps, step) {
		return "", 0, fmt.Errorf("no step %d in %s; its steps: %s", step, dir, strings.Trim(fmt.Sprint(steps), "[]"))
	}
	return dir, step, err
}

// stepOf is the --step flag, or the last step saved in dir.
func stepOf(c *cli.Context, dir string) (int, error) {
	if s := c.Int("step"); s >= 0 {
		return s, nil
	}
	return checkpoint.LastStep(dir)
}

// loadCheckpoint reads the checkpoint the flags choose under root, with the tokenizer it
// was trained with.
func loadCheckpoint(c *cli.Context, root string) (*checkpoint.Checkpoint, *tokenizer.Tokenizer, string, error) {
	dir, step, err := chosenStep(c, root)
	if err != nil {
		return nil, nil, "", err
	}
	ck, err := checkpoint.Load(dir, step, false)
	if err != nil {
		return nil, nil, "", err
	}
	tok, err := runTokenizer(c, ck.Meta, dir)
	return ck, tok, dir, err
}

// runTokenizer loads --tokenizer and checks that the run of meta (a step of dir) was
// trained with it.
func runTokenizer(c *cli.Context, meta checkpoint.Meta, dir string) (*tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(tokenizerDir(c))
	if err != nil {
		return nil, err
	}
	if fp := tok.Fingerprint(); fp != meta.Tokenizer.Fingerprint && meta.Tokenizer.Fingerprint != "" {
		return nil, fmt.Errorf("%s step %d was trained with tokenizer %s (%s), not %s (%s)",
			dir, meta.Step, meta.Tokenizer.Fingerprint, meta.Tokenizer.Dir, fp, tokenizerDir(c))
	}
	return tok, nil
}

// loadCached lays out the checkpoint the flags choose under root for generation on engine,
// quantized as --quantize asks: with int8, from the step's int8 file when `gochat
// checkpoint quantize` wrote one (the float32 weights are then not read).
func loadCached(c *cli.Context, root string, engine backend.Backend) (*graph.Cached, *tokenizer.Tokenizer, string, error) {
	dir, step, err := chosenStep(c, root)
	if err != nil {
		return nil, nil, "", err
	}
	if path := checkpoint.Int8File(dir, step); c.String("quantize") == "int8" && fileExists(path) {
		meta, err := checkpoint.ReadMeta(dir, step)
		if err != nil {
			return nil, nil, "", err
		}
		tok, err := runTokenizer(c, meta, dir)
		if err != nil {
			return nil, nil, "", err
		}
		m, err := graph.ReadCachedInt8(path, meta.ModelConfig, engine)
		return m, tok, fmt.Sprintf("%s, step %d (int8 weights)", dir, step), err
	}
	ck, tok, dir, err := loadCheckpoint(c, root)
	if err != nil {
		return nil, nil, "", err
	}
	m, err := cachedModel(c, ck.Meta.ModelConfig, ck.Weights, engine)
	return m, tok, fmt.Sprintf("%s, step %d", dir, ck.Meta.Step), err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func runEvalBPB(c *cli.Context) error {
	if err := positive(c, "device-batch-size", "split-tokens"); err != nil {
		return err
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	trainShards, valShard, err := loader.Split(dataDir(c)) // before the model is built
	if err != nil {
		return err
	}
	B := c.Int("device-batch-size")
	m, tok, which, err := bpbScorer(c, homeDir(c, "checkpoints", "base_checkpoints"), B, engine)
	if err != nil {
		return err
	}
	_, T := m.Shape()
	asked := c.Int("split-tokens") / (B * T)
	if asked < 1 {
		return fmt.Errorf("--split-tokens %d is less than one batch of %d×%d tokens", c.Int("split-tokens"), B, T)
	}
	splits := []struct {
		name   string
		shards []string
		steps  int
	}{{"train", trainShards, 0}, {"val", []string{valShard}, 0}}
	for i, sp := range splits {
		if splits[i].steps, err = train.EvalSteps(sp.shards, tok, B, T, asked); err != nil {
			return fmt.Errorf("%s split: %w", sp.name, err)
		}
	}
	fmt.Printf("%s, %d×%d tokens a batch\n", which, B, T)
	ctx, stop := interruptible(c.Context, "stopping after the batch under way")
	defer stop()
	for _, sp := range splits {
		fmt.Printf("%s split: %d batches, %d tokens", sp.name, sp.steps, sp.steps*B*T)
		if sp.steps < asked {
			fmt.Printf(" (all it holds; --split-tokens asks for %d)", asked*B*T)
		}
		fmt.Println()
		bpb, err := train.BPB(ctx, m, sp.shards, tok, sp.steps, progressBar("batches", 1, time.Now()))
		fmt.Fprintln(os.Stderr)
		if ctx.Err() != nil {
			return fmt.Errorf("eval bpb: interrupted")
		}
		if err != nil {
			return err
		}
		fmt.Printf("%s bpb: %.4f\n", sp.name, bpb)
	}
	return nil
}

// bundleBaseURL is where nanochat's eval_bundle.zip is served from.
var bundleBaseURL = strings.TrimSuffix(eval.BundleURL, "/eval_bundle.zip")

func evalCoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "core",
		Usage: "a base model's CORE metric on nanochat's eval bundle (nanochat's base_eval)",
		Description: "Scores every task of the bundle's core.yaml as nanochat's core_eval.py does (its item order and\n" +
			"few-shot draws, prompts and scoring, bfloat16 rotary tables) and prints each task's accuracy,\n" +
			"its accuracy centred on the random baseline, and CORE, their mean. Unlike nanochat it scores many\n" +
			"items a forward pass, --batch-tokens at most (rows × the longest, padding included; the logits\n" +
			"take that × vocab_size × 4 bytes), with the verdicts of scoring each alone. The bundle is fetched\n" +
			"from --base-url when its folder is missing. An item longer than the model reaches (10 ×\n" +
			"sequence_len, where nanochat's model stops too) is an error. Ctrl-C stops after the forward pass\n" +
			"under way, keeping the tasks printed and writing no --json.",
		Flags: []cli.Flag{
			sourceFlag("base"),
			modelTagFlag, stepFlag, tokenizerFlag, engineFlag, blasFlag, quantizeFlag,
			&cli.IntFlag{Name: "max-per-task", Value: -1, Usage: "items per task at most, the first in CORE's order (-1 or 0: all)"},
			&cli.IntFlag{Name: "batch-tokens", Value: 4096, Usage: "tokens per forward pass at most (an item larger runs alone; 1: one item at a time)"},
			&cli.StringFlag{Name: "bundle", Usage: "eval bundle `DIR` (default $GOCHAT_HOME/eval_bundle)"},
			&cli.StringFlag{Name: "base-url", Value: bundleBaseURL, EnvVars: []string{"GOCHAT_EVAL_BUNDLE_URL"}, Usage: "`URL` eval_bundle.zip is fetched from when the bundle is missing"},
			&cli.StringFlag{Name: "json", Usage: "write CORE, each task's accuracies and every item's verdict to `FILE`"},
		},
		Action: runEvalCore,
	}
}

func runEvalCore(c *cli.Context) error {
	if err := positive(c, "batch-tokens"); err != nil {
		return err
	}
	root, err := sourceRoot(c)
	if err != nil {
		return err
	}
	jsonPath := c.String("json")
	if jsonPath != "" {
		if info, err := os.Stat(filepath.Dir(jsonPath)); err != nil || !info.IsDir() {
			return fmt.Errorf("--json %s: no folder %s to write it in", jsonPath, filepath.Dir(jsonPath))
		}
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	m, tok, which, err := loadCached(c, root, engine)
	if err != nil {
		return err
	}
	m.NanochatRotary()
	ctx, stop := interruptible(c.Context, "stopping after the forward pass under way")
	defer stop()
	bundle, err := openBundle(ctx, c)
	if err != nil {
		return err
	}
	items := 0
	for _, t := range bundle.Items {
		items += len(eval.CoreOrder(len(t), c.Int("max-per-task")))
	}
	fmt.Printf("%s on %s; %s: %d tasks, %d items; forward passes of %d tokens at most\n",
		which, engine.Name(), bundle.Dir, len(bundle.Tasks), items, c.Int("batch-tokens"))

	// The task lines go to stdout; the bar of the items scored to stderr, kept below the
	// lines on a terminal, a line every 30 s and at the end elsewhere.
	start := time.Now()
	bar := progressBar("items", 1, start)
	log := &stepLog{tty: isTerminal(os.Stderr), bar: bar}
	res, err := eval.RunCore(ctx, m, tok, bundle, eval.CoreOptions{
		MaxPerTask:  c.Int("max-per-task"),
		BatchTokens: c.Int("batch-tokens"),
		Progress: func(done, total int) {
			if log.progress(done, total); !log.tty {
				bar(done, total)
			}
		},
		TaskDone: func(t eval.CoreTaskResult) {
			secs := t.Duration.Seconds()
			fmt.Fprintf(log, "Evaluating: %s (%d-shot, type: %s)... accuracy: %.4f | centered: %.4f | time: %.2fs | %.1f items/s\n",
				t.Task.Label, t.Task.NumFewshot[0], t.Task.Kind, t.Accuracy, t.Centered, secs, float64(len(t.Items))/secs)
		},
	})
	if log.finish(); !log.tty {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		if ctx.Err() != nil && res != nil {
			return fmt.Errorf("eval core: interrupted after %d of %d tasks: no CORE metric, and no --json written", len(res.Tasks), len(bundle.Tasks))
		}
		return err
	}
	printCoreTable(which, res)
	scored := 0
	for _, t := range res.Tasks {
		scored += len(t.Items)
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("%d items in %.1f s: %.1f items/s\n", scored, secs, float64(scored)/secs)
	logCoreSection(c.String("source"), which, res, float64(scored)/secs)
	if jsonPath == "" {
		return nil
	}
	if err := writeCoreJSON(jsonPath, res); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	fmt.Printf("wrote %s\n", jsonPath)
	return nil
}

// openBundle opens the bundle of --bundle, fetching it from --base-url into that folder
// first when the folder is missing.
func openBundle(ctx context.Context, c *cli.Context) (*eval.CoreBundle, error) {
	dir := homeDir(c, "bundle", "eval_bundle")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		url := strings.TrimSuffix(c.String("base-url"), "/") + "/eval_bundle.zip"
		fmt.Fprintf(os.Stderr, "no eval bundle at %s\n", dir)
		if _, err := download(ctx, "eval core", url, func(ctx context.Context, opt loader.DownloadOptions) error {
			return eval.DownloadBundle(ctx, dir, url, opt)
		}); err != nil {
			return nil, err
		}
	}
	return eval.OpenCoreBundle(dir)
}

// printCoreTable prints the tasks' accuracies and CORE as nanochat's base_eval prints its
// CSV file.
func printCoreTable(model string, res *eval.CoreResult) {
	rule := strings.Repeat("=", 80)
	fmt.Printf("%s\nModel: %s\n%s\n", rule, model, rule)
	fmt.Printf("%-35s, %-10s, %-10s\n", "Task", "Accuracy", "Centered")
	for _, t := range res.Tasks {
		fmt.Printf("%-35s, %-10.6f, %-10.6f\n", t.Task.Label, t.Accuracy, t.Centered)
	}
	fmt.Printf("%-35s, %-10s, %-10.6f\n", "CORE", "", res.Core)
}

// coreJSON is the --json file: CORE, and per task its accuracies and each item's verdict
// in evaluation order, the item named by its 0-based line in the task's JSONL file.
type coreJSON struct {
	Core  float64                 `json:"core_metric"`
	Tasks map[string]coreTaskJSON `json:"tasks"`
}

type coreTaskJSON struct {
	Accuracy float64        `json:"accuracy"`
	Centered float64        `json:"centered"`
	Items    []coreItemJSON `json:"items"`
}

type coreItemJSON struct {
	Line    int  `json:"line"`
	Correct bool `json:"correct"`
}

// writeCoreJSON writes res to path atomically: a reader finds the whole file or none.
func writeCoreJSON(path string, res *eval.CoreResult) error {
	out := coreJSON{Core: res.Core, Tasks: map[string]coreTaskJSON{}}
	for _, t := range res.Tasks {
		task := coreTaskJSON{Accuracy: t.Accuracy, Centered: t.Centered, Items: make([]coreItemJSON, len(t.Items))}
		for i, it := range t.Items {
			task.Items[i] = coreItemJSON{Line: it.Line, Correct: it.Correct}
		}
		out.Tasks[t.Task.Label] = task
	}
	return atomicfile.Write(path, func(f *os.File) error {
		enc := json.NewEncoder(f)
		enc.SetIndent("", " ")
		return enc.Encode(out)
	})
}

// bpbScorer is what eval bpb scores the checkpoint the flags choose under root with, its
// tokenizer and what it is (the run, the step): an Eval graph of B rows, or with
// --quantize int8 the generation model of int8 weights (from the step's int8 file when
// there is one, as loadCached reads it), which scores the same batches.
func bpbScorer(c *cli.Context, root string, B int, engine backend.Backend) (train.Scorer, *tokenizer.Tokenizer, string, error) {
	if c.String("quantize") != "none" {
		m, tok, which, err := loadCached(c, root, engine)
		if err != nil {
			return nil, nil, "", err
		}
		return &graph.CachedScorer{Model: m, Rows: B, SeqLen: m.Config.SequenceLen}, tok, which, nil
	}
	ck, tok, dir, err := loadCheckpoint(c, root)
	if err != nil {
		return nil, nil, "", err
	}
	cfg := ck.Meta.ModelConfig
	opt := graph.Options{Batch: B, SeqLen: cfg.SequenceLen, Mode: graph.Eval, Engine: engine}
	if err := checkEvalMemory(cfg, opt); err != nil {
		return nil, nil, "", err
	}
	m, err := graph.Build(cfg, opt)
	if err == nil {
		err = m.Load(ck.Weights)
	}
	return m, tok, fmt.Sprintf("%s, step %d", dir, ck.Meta.Step), err
}

// checkEvalMemory plans the evaluation graph of opt, prints the plan beside the engine's
// limit on stderr, and refuses a graph that would take more than train.Usable of it.
func checkEvalMemory(cfg graph.Config, opt graph.Options) error {
	mem, err := graph.Plan(cfg, opt)
	if err != nil {
		return err
	}
	limit, err := train.MemoryLimit(opt.Engine)
	if err != nil {
		return err
	}
	if !train.Fits(mem.Total(), limit) {
		return fmt.Errorf("evaluating d%d at %d rows of %d tokens needs %s, more than %.0f%% of the %s %s may use: lower --device-batch-size",
			cfg.NLayer, opt.Batch, opt.SeqLen, graph.Size(mem.Total()), 100*train.Usable, graph.Size(int64(limit)), opt.Engine.Name())
	}
	fmt.Fprintf(os.Stderr, "memory: %s weights, %s activations planned, of the %s the engine may use\n", graph.Size(mem.Weights), graph.Size(mem.Activations), graph.Size(int64(limit)))
	return nil
}
