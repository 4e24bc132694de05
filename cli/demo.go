package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gochat/internal/report"
	"gochat/loader"
	"gochat/tokenizer"
	"gochat/train"

	"github.com/urfave/cli/v2"
)

// goPrompts are sample prompts for a model trained on Go's source tree, the demo's
// default corpus; nanochat's own prompts are kept beside them.
var goPrompts = []string{
	"package main\n\nimport (",
	"func (b *Buffer) Len() int {",
	"\tif err != nil {",
}

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "the whole pipeline with no download: pack Go's source tree, train a tokenizer and a small model, report",
		Description: "Everything lands under $GOCHAT_HOME (default ~/.cache/gochat): the shards in base_data and the\n" +
			"tokenizer (each made once, kept and reused; shards already there, FineWeb's too, are used as they\n" +
			"are), the model in base_checkpoints/demo (replaced by each demo), and report/report.md.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "time", Value: 8 * time.Minute, Usage: "base training's time"},
			depthFlag(4), seqLenFlag(256), batchFlag(8), vocabFlag(8192),
			&cli.IntFlag{Name: "evals", Value: 12, Usage: "validation bpb measurements spread over the run (and one at the start)"},
			&cli.StringFlag{Name: "include", Value: "*.go", Usage: "file name `GLOB` of the Go source files to pack"},
			&cli.IntFlag{Name: "val-docs", Value: 256, Usage: "files that go to the validation shard"},
			&cli.IntFlag{Name: "problems", Value: 2400, Usage: "arithmetic problems made for mid-training (and half as many two-step ones; a third of each for SFT, a third for RL)"},
			engineFlag, blasFlag,
		},
		Action: runDemo,
	}
}

// self is how to run this program again from the same folder: as it was started ("./gochat",
// or "gochat" found on the PATH), or "go run ./cli" for the temporary binary of go run.
func self() string {
	name := os.Args[0]
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cli"
	}
	if !strings.ContainsRune(name, filepath.Separator) {
		return name
	}
	return quoteAll([]string{name})[0]
}

func runDemo(c *cli.Context) error {
	if err := positive(c, "depth", "max-seq-len", "device-batch-size", "vocab-size", "evals", "val-docs", "problems"); err != nil {
		return err
	}
	if c.Duration("time") <= 0 {
		return fmt.Errorf("--time must be positive")
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	home := gochatHome()
	data, tokDir := filepath.Join(home, "base_data"), filepath.Join(home, "tokenizer")
	start := time.Now()
	if err := report.Reset(reportDir()); err != nil { // the demo is a whole pipeline: a card of its own
		return err
	}

	fmt.Println("== 1/5 data")
	if _, _, err := loader.Split(data); err == nil {
		fmt.Println("using the shards in", data)
	} else {
		src := goSource()
		fmt.Printf("packing Go's source tree (%s, files %s, not generated, at most %d bytes) into shards, once\n", src, c.String("include"), goSrcMaxFile)
		if err := pack([]string{src}, data, loader.PackOptions{Include: []string{c.String("include")},
			ShardChars: 250_000_000, ValDocs: c.Int("val-docs"), Seed: 42, MaxFileBytes: goSrcMaxFile, SkipGenerated: true}); err != nil {
			return err
		}
	}

	fmt.Println("== 2/5 tokenizer")
	var tokNote string
	tok, err := tokenizer.Load(tokDir)
	if errors.Is(err, fs.ErrNotExist) {
		start := time.Now()
		opt := tokenizer.TrainOptions{VocabSize: c.Int("vocab-size"), DocCap: 10_000, MaxChars: 100_000_000}
		var docs int
		tok, docs, err = trainTokenizer(opt, tokDir, func(counter *tokenizer.Counter) (int, error) { return countShards(data, counter) })
		if err != nil {
			return err
		}
		tokNote = fmt.Sprintf(", trained here in %.1f s on %d documents (at most 10,000 characters each)", time.Since(start).Seconds(), docs)
	} else if err != nil {
		return err
	} else {
		fmt.Println("using the tokenizer in", tokDir)
		tokNote = ", made by an earlier run"
	}

	fmt.Println("== 3/5 base training")
	B, T := c.Int("device-batch-size"), c.Int("max-seq-len")
	s := train.DefaultSettings()
	s.Depth, s.MaxSeqLen, s.DeviceBatchSize, s.TotalBatchSize = c.Int("depth"), T, B, B*T
	s.TimeBudget, s.TargetParamDataRatio = c.Duration("time").Seconds(), 0
	s.EvalEvery, s.Evals, s.EvalTokens, s.SampleEvery = 0, c.Int("evals"), 20*B*T, 0
	dir := filepath.Join(home, "base_checkpoints", "demo")
	if err := os.RemoveAll(dir); err != nil { // the demo's own run, replaced each time
		return err
	}
	ctx, stop := interruptible(c.Context, "finishing the step and saving a checkpoint")
	defer stop()
	run := train.Run{Settings: s, Data: data, Tokenizer: tok, TokenizerDir: tokDir, Dir: dir,
		Prompts: append(append([]string(nil), train.SamplePrompts...), goPrompts...), Engine: engine}
	res, err := trainBase(ctx, run)
	if err != nil {
		return err
	}
	if err := logBaseSection(run, res, tokNote); err != nil {
		return err
	}

	var exchanges [][2]string
	if !res.Interrupted {
		fmt.Println("== 4/5 chat: conversations made here, mid-training, SFT, RL")
		stages, err := demoChatStages(ctx, engine, tok, tokDir, home, dir, B, c.Int("problems"))
		if err != nil {
			return err
		}
		if len(stages) == 3 && !stages[2].result.Interrupted {
			if exchanges, err = demoExchanges(ctx, engine, tok, stages[1].dir); err != nil {
				return err
			}
			var text strings.Builder
			for _, ex := range exchanges {
				fmt.Fprintf(&text, "> %s\n\n```\n%s\n```\n\n", ex[0], ex[1])
			}
			logSection(report.Section{Name: "demo-exchanges", Title: "Talking to the SFT model", Text: text.String()})
		}
	}

	fmt.Println("== 5/5 report")
	path, err := report.Generate(reportDir())
	if err != nil {
		return err
	}
	fmt.Printf("\nbase model: validation bpb %.4f after %d steps; the whole demo took %.1f minutes. The report card: %s\n",
		res.ValBPB, res.Step, time.Since(start).Minutes(), path)
	me := self()
	for _, ex := range exchanges {
		fmt.Printf("\n> %s\n%s\n", ex[0], ex[1])
	}
	fmt.Println("\nTalk to it:")
	if len(exchanges) > 0 {
		fmt.Printf("  %s chat -i sft -g demo   # the chat model (-i rl: after RL on the arithmetic)\n", me)
	}
	fmt.Printf("  %s chat -i base -g demo  # the base model: it continues what you type\n", me)
	fmt.Printf("  %s sample -g demo -n 3 'func (b *Buffer) Len() int {'\n", me)
	fmt.Println("Next:")
	fmt.Printf("  %s eval bpb -g demo --device-batch-size %d --split-tokens %d   # measure it again, on both splits\n", me, B, s.EvalTokens)
	fmt.Printf("  %s train base --help   # the full trainer, nanochat's flags\n", me)
	fmt.Printf("  %s data download -n 8  # FineWeb-edu shards, for models that speak English\n", me)
	return nil
}
