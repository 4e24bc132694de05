package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"gochat/checkpoint"
	"gochat/eval"
	"gochat/graph"
	"gochat/internal/measure"
	"gochat/tasks"
	"gochat/train"

	"github.com/urfave/cli/v2"
)

// The chat stages' commands: nanochat's mid_train, chat_sft and chat_rl. Each starts from
// a checkpoint of the stage before (-i, -g, -s), reads the datasets `gochat data download
// --task` fetched (--tasks), and writes its run folder under its stage's folder with the
// source's tag.

var tasksDirFlag = &cli.StringFlag{Name: "tasks", Usage: "`DIR` of the downloaded datasets (default $GOCHAT_HOME/tasks)"}

// chatStageFlags are the flags every chat stage has, with the stage's defaults.
func chatStageFlags(source string, seqLen, batch int, initLRFrac float64, evalEvery, saveEvery int) []cli.Flag {
	d := train.DefaultSettings()
	return []cli.Flag{
		&cli.StringFlag{Name: "source", Aliases: []string{"i"}, Value: source, Usage: "training stage of the checkpoint to start from: base, mid or sft"},
		modelTagFlag, stepFlag, seqLenFlag(seqLen), trainBatchFlag(batch), recomputeFlag,
		&cli.Float64Flag{Name: "embedding-lr", Value: d.EmbeddingLR, Usage: "AdamW learning rate of wte (before init-lr-frac)"},
		&cli.Float64Flag{Name: "unembedding-lr", Value: d.UnembeddingLR, Usage: "AdamW learning rate of lm_head (before init-lr-frac)"},
		&cli.Float64Flag{Name: "matrix-lr", Value: d.MatrixLR, Usage: "Muon learning rate of the block matrices (before init-lr-frac)"},
		&cli.Float64Flag{Name: "weight-decay", Value: 0, Usage: "AdamW weight decay"},
		&cli.Float64Flag{Name: "init-lr-frac", Value: initLRFrac, Usage: "the learning rates' share at the start"},
		&cli.IntFlag{Name: "eval-every", Value: evalEvery, Usage: "steps between evaluations (0: at the end only)"},
		&cli.IntFlag{Name: "save-every", Value: saveEvery, Usage: "steps between checkpoints (0: at the end only)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue the run from its last checkpoint"},
		&cli.IntFlag{Name: "num-iterations", Value: -1, Usage: "steps at most (-1: as many as the data makes)"},
		tasksDirFlag, tokenizerFlag, engineFlag, blasFlag, distTimeoutFlag, nprocFlag,
	}
}

func trainMidCommand() *cli.Command {
	return &cli.Command{
		Name:  "mid",
		Usage: "mid-train a base model on conversations, as nanochat's mid_train",
		Description: "Trains on SmolTalk, MMLU's auxiliary_train, GSM8K (and nanochat's identity conversations when\n" +
			"downloaded) rendered as conversations and packed into one token stream, for one pass; validation\n" +
			"bpb on their test splits. Like nanochat it trains on every token, the users' included\n" +
			"(--assistant-only trains on what SFT trains on). The learning rate is flat, then falls to zero\n" +
			"over the last 20% of the data (or of --num-iterations, when they end first). Writes\n" +
			"mid_checkpoints/<tag>/.",
		Flags: append(chatStageFlags("base", 2048, 32, 1, 150, 0),
			&cli.IntFlag{Name: "total-batch-size", Value: 524288, Usage: "tokens per optimizer step"},
			&cli.IntFlag{Name: "eval-tokens", Value: 20 * 524288, Usage: "validation tokens per evaluation"},
			&cli.BoolFlag{Name: "assistant-only", Usage: "train only on the assistant's tokens, as SFT does"}),
		Action: func(c *cli.Context) error { return runChatStage(c, train.MidStage) },
	}
}

func trainSFTCommand() *cli.Command {
	return &cli.Command{
		Name:  "sft",
		Usage: "fine-tune a model on conversations, as nanochat's chat_sft",
		Description: "Trains on ARC-Easy, ARC-Challenge, GSM8K and 10,000 SmolTalk conversations (and the identity\n" +
			"conversations when downloaded), one a row padded to --max-seq-len, on the assistant's tokens; the\n" +
			"learning rate falls linearly to zero. Validation loss on SmolTalk's test split; MMLU and ARC-Easy\n" +
			"accuracy every --eval-metrics-every steps when downloaded. Writes chatsft_checkpoints/<tag>/.",
		Flags: append(chatStageFlags("mid", 2048, 4, 0.02, 100, 0),
			&cli.IntFlag{Name: "target-examples-per-step", Value: 32, Usage: "conversations per optimizer step"},
			&cli.IntFlag{Name: "num-epochs", Value: 1, Usage: "passes over the conversations"},
			&cli.IntFlag{Name: "eval-steps", Value: 100, Usage: "validation batches per evaluation (of 4 conversations when --device-batch-size is auto)"},
			&cli.IntFlag{Name: "eval-metrics-every", Value: 200, Usage: "steps between MMLU and ARC-Easy accuracies (0: at the end only)"},
			&cli.IntFlag{Name: "eval-metrics-max-problems", Value: 1024, Usage: "problems of each accuracy"}),
		Action: func(c *cli.Context) error { return runChatStage(c, train.SFTStage) },
	}
}

func trainRLCommand() *cli.Command {
	return &cli.Command{
		Name:  "rl",
		Usage: "reinforce a chat model on GSM8K, as nanochat's chat_rl",
		Description: "REINFORCE: each step samples --num-samples replies to --examples-per-step GSM8K problems with the\n" +
			"calculator, rewards the right final answers and trains on the sampled tokens weighted by each\n" +
			"reply's reward less the problem's mean. pass@k on the test split every --eval-every steps.\n" +
			"Writes chatrl_checkpoints/<tag>/.",
		Flags: append(chatStageFlags("sft", 512, 8, 0.05, 60, 60),
			&cli.IntFlag{Name: "examples-per-step", Value: 16, Usage: "problems per optimizer step"},
			&cli.IntFlag{Name: "num-samples", Value: 16, Usage: "replies sampled to each problem (a multiple of --device-batch-size)"},
			&cli.IntFlag{Name: "max-new-tokens", Value: 256, Usage: "tokens a reply has at most"},
			&cli.Float64Flag{Name: "temperature", Value: 1, Usage: "sampling temperature"},
			&cli.IntFlag{Name: "top-k", Value: 50, Usage: "sample among the k most likely tokens"},
			&cli.IntFlag{Name: "num-epochs", Value: 1, Usage: "passes over the problems"},
			&cli.IntFlag{Name: "eval-examples", Value: 400, Usage: "test problems of each pass@k"}),
		Action: func(c *cli.Context) error { return runChatStage(c, train.RLStage) },
	}
}

// stageFolders are the stages' checkpoint folders (sources' keys).
var stageFolders = map[train.Stage]string{train.MidStage: "mid", train.SFTStage: "sft", train.RLStage: "rl"}

// chatSettings reads a chat stage's settings from its flags.
func chatSettings(c *cli.Context, st train.Stage) (train.Settings, error) {
	B, err := deviceBatch(c)
	if err != nil {
		return train.Settings{}, err
	}
	T := c.Int("max-seq-len")
	s := train.Settings{MaxSeqLen: T, DeviceBatchSize: B, EmbeddingLR: c.Float64("embedding-lr"),
		UnembeddingLR: c.Float64("unembedding-lr"), MatrixLR: c.Float64("matrix-lr"), WeightDecay: c.Float64("weight-decay"),
		InitLRFrac: c.Float64("init-lr-frac"), EvalEvery: c.Int("eval-every"), SaveEvery: c.Int("save-every"),
		Recompute: c.String("recompute"), NumIterations: c.Int("num-iterations")}
	switch st {
	case train.MidStage:
		s.TotalBatchSize, s.EvalTokens, s.AssistantOnly = c.Int("total-batch-size"), c.Int("eval-tokens"), c.Bool("assistant-only")
	case train.SFTStage:
		s.TotalBatchSize, s.NumEpochs = c.Int("target-examples-per-step")*T, c.Int("num-epochs")
		s.EvalTokens, s.MetricsEvery = c.Int("eval-steps")*evalRows(B)*T, c.Int("eval-metrics-every")
	case train.RLStage:
		s.ExamplesPerStep, s.NumSamples, s.MaxNewTokens = c.Int("examples-per-step"), c.Int("num-samples"), c.Int("max-new-tokens")
		s.Temperature, s.TopK, s.NumEpochs = c.Float64("temperature"), c.Int("top-k"), c.Int("num-epochs")
		s.EvalExamples = c.Int("eval-examples")
	}
	return s, nil
}

// autoEvalRows are the rows of SFT's validation batches and half those of its accuracies'
// when the device batch size is left to the fit: nanochat's SFT device batch size.
const autoEvalRows = 4

// evalRows is the rows of SFT's validation batches at device batch size B (0: auto).
func evalRows(B int) int {
	if B == 0 {
		return autoEvalRows
	}
	return B
}

// stageData is what a chat stage trains and validates on, from the downloaded datasets.
func stageData(c *cli.Context, st train.Stage, r *train.Run) error {
	root := homeDir(c, "tasks", "tasks")
	var identity bool
	var err error
	switch st {
	case train.MidStage:
		r.Train, r.Val, identity, err = tasks.MidMixtures(root)
	case train.SFTStage:
		if r.Train, r.Val, identity, err = tasks.SFTMixtures(root); err == nil {
			err = sftMetrics(c, root, r)
		}
	case train.RLStage:
		identity = true // RL trains on GSM8K alone
		if r.Train, err = tasks.Load(root, "gsm8k", "train"); err == nil {
			r.Val, err = tasks.Load(root, "gsm8k", "test")
		}
		r.Judge = tasks.CorrectGSM8K
	}
	if err == nil && !identity {
		fmt.Println("nanochat's identity conversations are not downloaded: training without them (gochat data download --task identity)")
	}
	return err
}

// sftMetrics measures MMLU and ARC-Easy accuracy during SFT, as chat_sft does, when their
// test splits are downloaded.
func sftMetrics(c *cli.Context, root string, r *train.Run) error {
	mmlu, err := tasks.Load(root, "mmlu", "test")
	if err != nil {
		fmt.Printf("no MMLU and ARC-Easy accuracies during SFT: %v\n", err)
		return nil
	}
	arc, err := tasks.Load(root, "arc-easy", "test")
	if err != nil {
		fmt.Printf("no MMLU and ARC-Easy accuracies during SFT: %v\n", err)
		return nil
	}
	B, err := deviceBatch(c)
	if err != nil {
		return err
	}
	batch, problems := 2*evalRows(B), c.Int("eval-metrics-max-problems")
	r.Metrics = func(ctx context.Context, m *graph.Cached) (map[string]float64, error) {
		out := map[string]float64{}
		for name, task := range map[string]tasks.Task{"mmlu_acc": mmlu, "arc_easy_acc": arc} {
			res, err := eval.Categorical(ctx, m, r.Tokenizer, task, batch, problems, nil)
			if err != nil {
				return nil, err
			}
			out[name] = res.Accuracy()
		}
		return out, nil
	}
	return nil
}

func runChatStage(c *cli.Context, st train.Stage) (err error) {
	if err := positive(c, "max-seq-len"); err != nil {
		return err
	}
	s, err := chatSettings(c, st)
	if err != nil {
		return err
	}
	for _, n := range []string{"eval-every", "save-every"} {
		if c.Int(n) < 0 {
			return fmt.Errorf("--%s must not be negative", n)
		}
	}
	if launcher, err := asLauncher(c); launcher {
		return err
	}
	source := c.String("source")
	folder, ok := sources[source]
	if !ok || source == "rl" || source == stageFolders[st] {
		return fmt.Errorf("--source %q: want the checkpoint of an earlier stage (base, mid or sft)", source)
	}
	from, tok, fromDir, err := loadCheckpoint(c, filepath.Join(gochatHome(), folder))
	if err != nil {
		return err
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	s.Source = fmt.Sprintf("%s step %d", fromDir, from.Meta.Step)
	r := train.Run{Stage: st, Settings: s, From: from, Tokenizer: tok, TokenizerDir: tokenizerDir(c),
		Dir: filepath.Join(gochatHome(), sources[stageFolders[st]], filepath.Base(fromDir)), Resume: c.Bool("resume"), Engine: engine}
	if steps, _ := checkpoint.Steps(r.Dir); len(steps) > 0 && !r.Resume { // a new run must not sit among an old one's steps
		return fmt.Errorf("%s already holds a run (steps %s): --resume continues it; remove the folder to start a new one",
			r.Dir, strings.Trim(fmt.Sprint(steps), "[]"))
	}
	if err := stageData(c, st, &r); err != nil {
		return err
	}
	comm, err := joinRanks(c, engine)
	if err != nil {
		return err
	}
	defer func() { err = leaveRanks(comm, err) }()
	r.Comm = comm
	r.Peak = measure.PeakOf(r.Engine)
	fmt.Printf("engine: %s; MFU is a share of %s: %.1f GFLOP/s\n", r.Engine.Name(), r.Peak.What, r.Peak.FLOPS/1e9)
	ctx, stop := interruptible(c.Context, "finishing the step and saving a checkpoint")
	defer stop()
	log := newStepLog()
	r.Log, r.Progress = log, log.progress
	res, err := map[train.Stage]func(context.Context, train.Run) (*train.Result, error){
		train.MidStage: train.Mid, train.SFTStage: train.SFT, train.RLStage: train.RL}[st](ctx, r)
	log.finish()
	if err != nil {
		return err
	}
	if comm == nil || comm.Rank() == 0 {
		logStageSection(r, res)
	}
	switch st {
	case train.MidStage:
		fmt.Printf("minimum validation bpb: %.4f\n", res.MinValBPB)
	case train.SFTStage:
		fmt.Printf("validation loss: %.4f\n", res.ValLoss)
	case train.RLStage:
		fmt.Printf("last step's mean reward: %.4f\n", res.Reward)
	}
	fmt.Printf("total training time: %.2fm; checkpoints, metrics.jsonl and plots are in %s\n", res.Seconds/60, r.Dir)
	if res.Interrupted {
		fmt.Printf("interrupted at step %d; continue with the same command and --resume\n", res.Step)
	} else {
		fmt.Printf("talk to it: gochat chat -i %s -g %s\n", stageFolders[st], filepath.Base(r.Dir))
	}
	return nil
}
