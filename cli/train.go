package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"gochat/checkpoint"
	"gochat/internal/measure"
	"gochat/tokenizer"
	"gochat/train"

	"github.com/urfave/cli/v2"
)

// trainFlags are base_train's knobs under its names, with its defaults.
func trainFlags() []cli.Flag {
	d := train.DefaultSettings()
	return []cli.Flag{
		depthFlag(d.Depth), seqLenFlag(d.MaxSeqLen), trainBatchFlag(d.DeviceBatchSize), recomputeFlag,
		&cli.IntFlag{Name: "total-batch-size", Value: d.TotalBatchSize, Usage: "tokens per optimizer step (a multiple of a forward pass's)"},
		&cli.IntFlag{Name: "num-iterations", Value: d.NumIterations, Usage: "optimizer steps (first of the horizons that is positive)"},
		&cli.Float64Flag{Name: "target-flops", Value: d.TargetFLOPs, Usage: "training FLOPs (second horizon)"},
		&cli.DurationFlag{Name: "time-budget", Usage: "wall time of the run, e.g. 10m (third horizon: steps follow from the first steps' speed)"},
		&cli.Float64Flag{Name: "target-param-data-ratio", Value: d.TargetParamDataRatio, Usage: "training tokens per parameter (last horizon)"},
		&cli.Float64Flag{Name: "embedding-lr", Value: d.EmbeddingLR, Usage: "AdamW learning rate of wte"},
		&cli.Float64Flag{Name: "unembedding-lr", Value: d.UnembeddingLR, Usage: "AdamW learning rate of lm_head"},
		&cli.Float64Flag{Name: "matrix-lr", Value: d.MatrixLR, Usage: "Muon learning rate of the block matrices"},
		&cli.Float64Flag{Name: "weight-decay", Value: d.WeightDecay, Usage: "AdamW weight decay"},
		&cli.Float64Flag{Name: "grad-clip", Value: d.GradClip, Usage: "global gradient norm clip (0: none)"},
		&cli.Float64Flag{Name: "warmup-ratio", Value: d.WarmupRatio, Usage: "share of the steps warming the learning rate up"},
		&cli.Float64Flag{Name: "warmdown-ratio", Value: d.WarmdownRatio, Usage: "share of the steps cooling it down"},
		&cli.Float64Flag{Name: "final-lr-frac", Value: d.FinalLRFrac, Usage: "learning rate at the end, as a share of the initial"},
		&cli.IntFlag{Name: "eval-every", Value: d.EvalEvery, Usage: "steps between validation bpb measurements (0: at the end only)"},
		&cli.IntFlag{Name: "eval-tokens", Value: d.EvalTokens, Usage: "validation tokens per measurement"},
		&cli.IntFlag{Name: "sample-every", Value: d.SampleEvery, Usage: "steps between samples (0: at the end only)"},
		&cli.IntFlag{Name: "save-every", Value: d.SaveEvery, Usage: "steps between checkpoints (0: at the end only)"},
		&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of the initialisation"},
		&cli.BoolFlag{Name: "resume", Usage: "continue the run from its last checkpoint"},
		&cli.StringFlag{Name: "model-tag", Usage: "name of the run's folder (default d<depth>)"},
		checkpointsFlag(),
		dataFlag, tokenizerFlag, engineFlag, blasFlag, distTimeoutFlag, nprocFlag,
	}
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "train models",
		Subcommands: []*cli.Command{{
			Name:  "base",
			Usage: "pretrain a GPT on the shards of --data, as nanochat's base_train",
			Description: "Writes checkpoints, metrics.jsonl, loss.png and val_bpb.png to the run's folder. Ctrl-C saves a\n" +
				"checkpoint and stops; --resume continues from it exactly. Under mpirun (mpirun -np 2 gochat train base ...)\n" +
				"or with --nproc-per-node N (N processes on this machine, one per GPU, through NCCL) the run is spread\n" +
				"over the processes, each taking its share of every step's batch; the mid, sft and rl stages do the same.",
			Flags:  trainFlags(),
			Action: runTrainBase,
		}, trainMidCommand(), trainSFTCommand(), trainRLCommand()},
	}
}

// trainSettings reads the settings from the flags.
func trainSettings(c *cli.Context) (train.Settings, error) {
	rows, err := deviceBatch(c)
	return train.Settings{
		Depth: c.Int("depth"), MaxSeqLen: c.Int("max-seq-len"), DeviceBatchSize: rows,
		TotalBatchSize: c.Int("total-batch-size"), NumIterations: c.Int("num-iterations"), TargetFLOPs: c.Float64("target-flops"),
		TimeBudget: c.Duration("time-budget").Seconds(), TargetParamDataRatio: c.Float64("target-param-data-ratio"),
		EmbeddingLR: c.Float64("embedding-lr"), UnembeddingLR: c.Float64("unembedding-lr"), MatrixLR: c.Float64("matrix-lr"),
		WeightDecay: c.Float64("weight-decay"), GradClip: c.Float64("grad-clip"), WarmupRatio: c.Float64("warmup-ratio"),
		WarmdownRatio: c.Float64("warmdown-ratio"), FinalLRFrac: c.Float64("final-lr-frac"), EvalEvery: c.Int("eval-every"),
		EvalTokens: c.Int("eval-tokens"), SampleEvery: c.Int("sample-every"), SaveEvery: c.Int("save-every"), Seed: c.Uint64("seed"),
		Recompute: c.String("recompute"),
	}, err
}

// runDir is the run's checkpoint folder.
func runDir(c *cli.Context, depth int) (string, error) {
	tag := c.String("model-tag")
	if tag == "" {
		tag = fmt.Sprintf("d%d", depth)
	}
	if err := checkpoint.ValidTag(tag); err != nil {
		return "", fmt.Errorf("--model-tag: %w", err)
	}
	return filepath.Join(homeDir(c, "checkpoints", "base_checkpoints"), tag), nil
}

func runTrainBase(c *cli.Context) (err error) {
	s, err := trainSettings(c)
	if err != nil {
		return err
	}
	for _, n := range []string{"eval-every", "sample-every", "save-every"} {
		if c.Int(n) < 0 {
			return fmt.Errorf("--%s must not be negative", n)
		}
	}
	if launcher, err := asLauncher(c); launcher {
		return err
	}
	tok, err := tokenizer.Load(tokenizerDir(c))
	if err != nil {
		return fmt.Errorf("%w (train one with `gochat tok train`)", err)
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	dir, err := runDir(c, s.Depth)
	if err != nil {
		return err
	}
	comm, err := joinRanks(c, engine)
	if err != nil {
		return err
	}
	defer func() { err = leaveRanks(comm, err) }()
	ctx, stop := interruptible(c.Context, "finishing the step and saving a checkpoint")
	defer stop()
	r := train.Run{Settings: s, Data: dataDir(c), Tokenizer: tok, TokenizerDir: tokenizerDir(c),
		Dir: dir, Resume: c.Bool("resume"), Engine: engine, Comm: comm}
	res, err := trainBase(ctx, r)
	if err != nil {
		return err
	}
	if comm == nil || comm.Rank() == 0 {
		if err := logBaseSection(r, res, ""); err != nil {
			return err
		}
	}
	if res.Interrupted {
		fmt.Printf("interrupted at step %d; continue with the same command and --resume\n", res.Step)
	}
	return nil
}

// trainBase completes r (its engine chosen) with the engine's peak and a progress display,
// trains, and prints nanochat's closing summary.
func trainBase(ctx context.Context, r train.Run) (*train.Result, error) {
	r.Peak = measure.PeakOf(r.Engine)
	fmt.Printf("engine: %s; MFU is a share of %s: %.1f GFLOP/s\n", r.Engine.Name(), r.Peak.What, r.Peak.FLOPS/1e9)
	log := newStepLog()
	r.Log, r.Progress = log, log.progress
	res, err := train.Base(ctx, r)
	log.finish()
	if err != nil {
		return nil, err
	}
	fmt.Printf("peak memory: %.0f MiB\n", float64(measure.PeakRSS())/(1<<20))
	fmt.Printf("total training time: %.2fm, %.0f tok/s, MFU %.2f%% (of %.1f GFLOP/s), waiting for data %.2f%% of the step time\n",
		res.Seconds/60, res.TokPerSec, res.MFU, r.Peak.FLOPS/1e9, 100*res.DataWait)
	fmt.Printf("minimum validation bpb: %.4f\n", res.MinValBPB)
	fmt.Printf("checkpoints, metrics.jsonl, loss.png and val_bpb.png are in %s\n", r.Dir)
	return res, nil
}

// interruptible returns a context cancelled by the first Ctrl-C (or SIGTERM), which says
// what the program does then; a second one ends the program at once.
func interruptible(parent context.Context, then string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
			fmt.Fprintf(os.Stderr, "\ninterrupted: %s (Ctrl-C again quits at once)\n", then)
			cancel()
		case <-ctx.Done():
		}
		signal.Stop(sig)
	}()
	return ctx, cancel
}
