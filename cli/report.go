package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"gochat/eval"
	"gochat/internal/report"
	"gochat/loader"
	"gochat/tokenizer"
	"gochat/train"

	"github.com/urfave/cli/v2"
)

// reportDir is where the report card's sections and report.md are.
func reportDir() string { return filepath.Join(gochatHome(), "report") }

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "assemble the report card from the sections training and evaluation commands logged",
		Description: "Each training stage (train base, mid, sft, rl) and evaluation (eval core, eval chat) logs its\n" +
			"section into $GOCHAT_HOME/report as it finishes; this writes report.md there from them, with the\n" +
			"summary table of the evaluations by stage, as nanochat's report card.",
		Action: func(*cli.Context) error {
			path, err := report.Generate(reportDir())
			if err == nil {
				fmt.Println("the report card:", path)
			}
			return err
		},
		Subcommands: []*cli.Command{{
			Name:  "reset",
			Usage: "start a new report card (the sections logged so far are removed)",
			Action: func(*cli.Context) error {
				if err := report.Reset(reportDir()); err != nil {
					return err
				}
				fmt.Println("a new report card starts in", reportDir())
				return nil
			},
		}},
	}
}

// logSection logs a section, saying so; a card that cannot be written is a warning, not
// a failure of the command that trained or evaluated.
func logSection(s report.Section, plots ...string) {
	if err := report.Log(reportDir(), s, plots...); err != nil {
		fmt.Printf("warning: the report card's %s section: %v\n", s.Name, err)
	}
}

// runRows are what every training section says of its run.
func runRows(r train.Run, res *train.Result) [][2]string {
	p := res.Plan
	tokens := res.Step * p.TokensPerStep
	rows := [][2]string{
		{"engine", fmt.Sprintf("%s on %s, %d processors used", r.Engine.Name(), report.CPUModel(), runtime.GOMAXPROCS(0))},
		{"run", r.Dir},
		{"steps", fmt.Sprintf("%d of %d tokens (%d × %d), %d tokens in all", res.Step, p.TokensPerStep, res.Rows, r.Settings.MaxSeqLen, tokens)},
		{"time", fmt.Sprintf("%.1f minutes", res.Seconds/60)},
		{"speed", fmt.Sprintf("%.0f tok/s, MFU %.1f%% of %s, %.2f%% of step time waiting for data", res.TokPerSec, res.MFU, res.Peak.What, 100*res.DataWait)},
		{"final training loss", fmt.Sprintf("%.4f (EMA)", res.Loss)},
	}
	if res.Interrupted {
		rows = append(rows, [2]string{"note", "interrupted by the user"})
	}
	return rows
}

// plotsOf are a run folder's plots.
func plotsOf(dir string) []string {
	var out []string
	for _, p := range []string{"loss.png", "val_bpb.png", "val_loss.png", "reward.png", "pass_at_1.png", "pass_at_k.png"} {
		out = append(out, filepath.Join(dir, p))
	}
	return out
}

// logBaseSection logs base training's section: the data and tokenizer, the model, the
// run, its validation and samples; tokNote says where the tokenizer came from.
func logBaseSection(r train.Run, res *train.Result, tokNote string) error {
	_, val, err := loader.Split(r.Data)
	if err != nil {
		return err
	}
	bpt, err := bytesPerToken(r.Tokenizer, val)
	if err != nil {
		return err
	}
	p, c := res.Plan, res.Plan.Model
	rows := [][2]string{
		{"shards", fmt.Sprintf("%s, %s validates", r.Data, filepath.Base(val))},
		{"tokenizer", fmt.Sprintf("%s: %d tokens%s", r.TokenizerDir, r.Tokenizer.VocabSize(), tokNote)},
		{"compression", fmt.Sprintf("%.2f bytes per token on the validation shard", bpt)},
		{"model", fmt.Sprintf("depth %d (n_embd %d, %d heads of %d, sequence %d), %d parameters, %.3g FLOPs per token", c.NLayer, c.NEmbd, c.NHead, c.HeadDim(), c.SequenceLen, p.Params, p.FLOPsPerToken)},
	}
	rows = append(rows, runRows(r, res)...)
	rows = append(rows, [2]string{"validation bpb", fmt.Sprintf("%.4f at the end, %.4f at best", res.ValBPB, res.MinValBPB)})
	var text strings.Builder
	if len(res.Samples) > 0 {
		text.WriteString("Greedy completions of the sample prompts:\n\n")
		for _, s := range res.Samples {
			fmt.Fprintf(&text, "```\n%s\n```\n\n", strings.TrimRight(s, "\n"))
		}
	}
	logSection(report.Section{Name: "base-training", Title: "Base training", Rows: rows, Text: text.String()}, plotsOf(r.Dir)...)
	return nil
}

// logStageSection logs a chat stage's section: where it started, its data, the run and
// what its evaluations measured.
func logStageSection(r train.Run, res *train.Result) {
	rows := [][2]string{{"from", r.Settings.Source}, {"conversations", fmt.Sprintf("%d to train on, %d held out", r.Train.Len(), r.Val.Len())}}
	rows = append(rows, runRows(r, res)...)
	var name, title string
	switch r.Stage {
	case train.MidStage:
		name, title = "mid-training", "Mid-training"
		rows = append(rows, [2]string{"validation bpb", fmt.Sprintf("%.4f at the end, %.4f at best", res.ValBPB, res.MinValBPB)})
	case train.SFTStage:
		name, title = "chat-sft", "SFT"
		rows = append(rows, [2]string{"validation loss", fmt.Sprintf("%.4f", res.ValLoss)})
	case train.RLStage:
		name, title = "chat-rl", "RL"
		rows = append(rows, [2]string{"mean reward", fmt.Sprintf("%.4f in the last step", res.Reward)})
		if len(res.PassAtK) > 0 {
			rows = append(rows, [2]string{"held out", fmt.Sprintf("pass@1 %.4f, pass@%d %.4f", res.PassAtK[0], len(res.PassAtK), res.PassAtK[len(res.PassAtK)-1])})
		}
	}
	for metric, v := range res.Metrics {
		rows = append(rows, [2]string{metric, fmt.Sprintf("%.4f", v)})
	}
	logSection(report.Section{Name: name, Title: title, Rows: rows}, plotsOf(r.Dir)...)
}

// evalSectionName is the report card's name for an evaluation of a stage's model: nanochat's
// base-eval for CORE of the base model, chat-eval-<stage> for the chat evaluations.
func evalSectionName(kind, source string) string {
	if kind == "core" && source == "base" {
		return "base-eval"
	}
	return kind + "-eval-" + source
}

// logCoreSection logs CORE's section: each task's accuracy and centred accuracy, and CORE
// in the summary's column of the stage evaluated.
func logCoreSection(source, model string, res *eval.CoreResult, itemsPerSec float64) {
	rows := [][2]string{{"model", model}, {"speed", fmt.Sprintf("%.1f items/s", itemsPerSec)}}
	for _, t := range res.Tasks {
		rows = append(rows, [2]string{t.Task.Label, fmt.Sprintf("accuracy %.4f, centred %.4f (%d items)", t.Accuracy, t.Centered, len(t.Items))})
	}
	rows = append(rows, [2]string{"CORE", fmt.Sprintf("%.4f", res.Core)})
	logSection(report.Section{Name: evalSectionName("core", source), Title: fmt.Sprintf("CORE of the %s model", source), Rows: rows,
		Stage: source, Metrics: map[string]float64{"CORE": res.Core}})
}

// logChatEvalSection logs the chat evaluations' section: each task's accuracy, and
// ChatCORE when all five ran, in the summary's column of the stage evaluated.
func logChatEvalSection(source, model string, accuracy map[string]float64, chatCORE *float64) {
	rows := [][2]string{{"model", model}}
	metrics := map[string]float64{}
	for _, name := range eval.ChatTasks {
		if a, ok := accuracy[name]; ok {
			rows = append(rows, [2]string{name, fmt.Sprintf("%.4f", a)})
			metrics[name] = a
		}
	}
	if chatCORE != nil {
		rows = append(rows, [2]string{"ChatCORE", fmt.Sprintf("%.4f", *chatCORE)})
		metrics["ChatCORE"] = *chatCORE
	}
	logSection(report.Section{Name: evalSectionName("chat", source), Title: fmt.Sprintf("Chat evaluation of the %s model", source), Rows: rows,
		Stage: source, Metrics: metrics})
}

// bytesPerToken is the tokenizer's compression on a shard's documents.
func bytesPerToken(tok *tokenizer.Tokenizer, shard string) (float64, error) {
	var bytes, tokens int
	err := loader.EachDocument([]string{shard}, func(d string) bool {
		bytes += len(d)
		tokens += len(tok.Encode(d))
		return bytes < 50_000_000
	})
	return float64(bytes) / float64(max(tokens, 1)), err
}
