package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gochat/checkpoint"
	"gochat/graph"
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
		Subcommands: []*cli.Command{{
			Name:  "bpb",
			Usage: "bits per byte of a base checkpoint on the training and validation shards (nanochat's base_loss)",
			Flags: []cli.Flag{modelTagFlag, stepFlag, dataFlag, tokenizerFlag, engineFlag, blasFlag,
				checkpointsFlag(), batchFlag(32),
				&cli.IntFlag{Name: "split-tokens", Value: 20 * 524288, Usage: "tokens evaluated per split"},
			},
			Action: runEvalBPB,
		}, chatEvalCommand()},
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
	tok, err := tokenizer.Load(tokenizerDir(c))
	if err != nil {
		return nil, nil, "", err
	}
	if fp := tok.Fingerprint(); fp != ck.Meta.Tokenizer.Fingerprint && ck.Meta.Tokenizer.Fingerprint != "" {
		return nil, nil, "", fmt.Errorf("%s step %d was trained with tokenizer %s (%s), not %s (%s)",
			dir, step, ck.Meta.Tokenizer.Fingerprint, ck.Meta.Tokenizer.Dir, fp, tokenizerDir(c))
	}
	return ck, tok, dir, nil
}

func runEvalBPB(c *cli.Context) error {
	if err := positive(c, "device-batch-size", "split-tokens"); err != nil {
		return err
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	ck, tok, dir, err := loadCheckpoint(c, homeDir(c, "checkpoints", "base_checkpoints"))
	if err != nil {
		return err
	}
	trainShards, valShard, err := loader.Split(dataDir(c))
	if err != nil {
		return err
	}
	cfg := ck.Meta.ModelConfig
	B, T := c.Int("device-batch-size"), cfg.SequenceLen
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
	m, err := graph.Build(cfg, graph.Options{Batch: B, SeqLen: T, Mode: graph.Eval, Engine: engine})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Load(ck.Weights); err != nil {
		return err
	}
	fmt.Printf("%s step %d, %d×%d tokens a batch\n", dir, ck.Meta.Step, B, T)
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
