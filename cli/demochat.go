package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gochat/backend"
	"gochat/checkpoint"
	"gochat/graph"
	"gochat/internal/measure"
	"gochat/sampler"
	"gochat/tasks"
	"gochat/tokenizer"
	"gochat/train"
)

// The demo's chat stages: with no dataset to download, it makes its conversations from
// what every Go install has (questions about Go's packages answered with their package
// comments, and arithmetic word problems answered through the calculator as GSM8K's
// solutions are), mid-trains and fine-tunes the base model on them, and reinforces the
// arithmetic, whose reward it can judge.

// demoConversations are the demo's conversations: for mid-training, SFT and RL, each with
// its held-out part.
type demoConversations struct {
	midTrain, midVal, sftTrain, sftVal, rlTrain, rlVal tasks.Task
}

// makeConversations makes them from the Go source tree src, with n one-step arithmetic
// problems for mid-training and half as many two-step ones, a third of each for SFT, and
// fresh one-step problems for RL: sampled at temperature 1, the SFT model gets about three
// in four right, and RL sharpens that.
func makeConversations(src string, n int) (demoConversations, error) {
	docs, err := tasks.GoDocs(src)
	if err != nil {
		return demoConversations{}, err
	}
	shuffled := tasks.Shuffle(docs, 1)
	held := max(1, docs.Len()/10)
	docsTrain, _ := tasks.NewView(shuffled, 0, docs.Len()-held, 1)
	docsVal, _ := tasks.NewView(shuffled, docs.Len()-held, -1, 1)
	return demoConversations{
		midTrain: tasks.NewMixture(docsTrain, docsTrain, tasks.Arithmetic(n, 1), tasks.TwoStepArithmetic(n/2, 11)),
		midVal:   tasks.NewMixture(docsVal, tasks.Arithmetic(max(n/30, 16), 2)),
		sftTrain: tasks.NewMixture(docsTrain, tasks.Arithmetic(n/3, 3), tasks.TwoStepArithmetic(n/3, 13)),
		sftVal:   tasks.NewMixture(docsVal, tasks.Arithmetic(max(n/50, 16), 4)),
		rlTrain:  tasks.Arithmetic(max(n/3, 8), 5),
		rlVal:    tasks.Arithmetic(32, 6),
	}, nil
}

// demoStage is one chat stage of the demo: its run and what it printed.
type demoStage struct {
	name   string
	result *train.Result
	dir    string
}

// demoChatStages runs mid-training, SFT and RL after the demo's base training (its last
// checkpoint in baseDir), each run folder named demo and replaced, and returns them.
func demoChatStages(ctx context.Context, engine backend.Backend, tok *tokenizer.Tokenizer, tokDir, home, baseDir string, B, problems int) ([]demoStage, error) {
	convs, err := makeConversations(goSource(), problems)
	if err != nil {
		return nil, err
	}
	fmt.Printf("conversations made here: %d for mid-training (Go's package comments, arithmetic with the calculator), %d for SFT, %d arithmetic problems for RL\n",
		convs.midTrain.Len(), convs.sftTrain.Len(), convs.rlTrain.Len())
	from := baseDir
	var done []demoStage
	for _, st := range []struct {
		stage      train.Stage
		run        func(context.Context, train.Run) (*train.Result, error)
		train, val tasks.Task
	}{{train.MidStage, train.Mid, convs.midTrain, convs.midVal}, {train.SFTStage, train.SFT, convs.sftTrain, convs.sftVal},
		{train.RLStage, train.RL, convs.rlTrain, convs.rlVal}} {
		ck, err := checkpoint.LoadLast(from, false)
		if err != nil {
			return done, err
		}
		dir := filepath.Join(home, sources[stageFolders[st.stage]], "demo")
		if err := os.RemoveAll(dir); err != nil {
			return done, err
		}
		r := train.Run{Stage: st.stage, Settings: demoSettings(st.stage, B, st.train.Len()), From: ck, Train: st.train, Val: st.val, Tokenizer: tok,
			TokenizerDir: tokDir, Dir: dir, Engine: engine, Peak: measure.PeakOf(engine), Judge: tasks.CorrectGSM8K}
		r.Settings.Source = fmt.Sprintf("%s step %d", from, ck.Meta.Step)
		if st.stage == train.RLStage { // as wide as the longest problem and its reply
			longest, err := train.LongestPrompt(tok, tasks.Sequence{st.train, st.val})
			if err != nil {
				return done, err
			}
			r.Settings.MaxSeqLen = longest + r.Settings.MaxNewTokens - 1
		}
		fmt.Printf("== %s\n", map[train.Stage]string{train.MidStage: "mid-training", train.SFTStage: "SFT", train.RLStage: "RL on the arithmetic"}[st.stage])
		log := newStepLog()
		r.Log, r.Progress = log, log.progress
		res, err := st.run(ctx, r)
		log.finish()
		if err != nil {
			return done, err
		}
		logStageSection(r, res)
		if st.stage == train.RLStage {
			fmt.Println(rlSummary(res))
		}
		done = append(done, demoStage{name: st.stage.String(), result: res, dir: dir})
		if res.Interrupted {
			return done, nil
		}
		from = dir
	}
	return done, nil
}

// rlSummary says how RL went: the mean reward of the first and last thirds of its steps,
// and pass@1 on the held-out problems at its first and last evaluation.
func rlSummary(res *train.Result) string {
	mean := func(x []float64) float64 {
		var s float64
		for _, v := range x {
			s += v
		}
		return s / float64(max(len(x), 1))
	}
	r, p := res.Rewards, res.PassAt1
	if len(r) < 3 || len(p) < 2 {
		return fmt.Sprintf("RL: %d steps, too few to compare", len(r))
	}
	third := len(r) / 3
	return fmt.Sprintf("RL: mean reward %.3f over the first third of the steps, %.3f over the last; pass@1 on held-out problems %.3f at the start, %.3f at the end",
		mean(r[:third]), mean(r[len(r)-third:]), p[0], p[len(p)-1])
}

// demoSettings are the demo's settings of a chat stage that trains on n conversations:
// nanochat's recipes at the demo's scale.
func demoSettings(st train.Stage, B, n int) train.Settings {
	d := train.DefaultSettings()
	s := train.Settings{DeviceBatchSize: B, EmbeddingLR: d.EmbeddingLR, UnembeddingLR: d.UnembeddingLR, MatrixLR: d.MatrixLR}
	switch st {
	case train.MidStage:
		s.MaxSeqLen, s.TotalBatchSize, s.InitLRFrac, s.EvalEvery, s.EvalTokens = 256, B*256, 1, 25, 4*B*256
	case train.SFTStage:
		s.MaxSeqLen, s.TotalBatchSize, s.InitLRFrac, s.EvalEvery, s.EvalTokens = 128, 2*B*128, 0.2, 25, 8*B*128
	case train.RLStage:
		s.ExamplesPerStep, s.NumSamples, s.MaxNewTokens, s.Temperature, s.TopK = 8, B, 48, 1, 50
		// nanochat's 0.05 barely moves a small model in the demo's few steps, and 1 overshoots
		// (measured on the demo's SFT model: the reward fell from 0.9 to 0.55); 0.2 sharpens it.
		s.InitLRFrac, s.NumIterations, s.EvalEvery, s.EvalExamples = 0.2, min(24, n/8), 8, 32
	}
	return s
}

// demoExchanges are a few real exchanges with the model in dir: questions it was taught to
// answer, and ones it was not.
func demoExchanges(ctx context.Context, engine backend.Backend, tok *tokenizer.Tokenizer, dir string) ([][2]string, error) {
	ck, err := checkpoint.LoadLast(dir, false)
	if err != nil {
		return nil, err
	}
	m, err := graph.NewCached(ck.Meta.ModelConfig, ck.Weights, engine)
	if err != nil {
		return nil, err
	}
	gen, err := sampler.NewGenerator(m, tok)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, q := range []string{"What is 47 + 38?", "There are 6 boxes with 9 pens in each box and 5 loose pens. How many pens are there in all?",
		"What does the Go package net/http do?", "Tell me about Go's sort package."} {
		prompt, err := tok.RenderForCompletion(tokenizer.Conversation{Messages: []tokenizer.Message{{Role: "user", Text: q}, {Role: "assistant"}}})
		if err != nil {
			return nil, err
		}
		replies, _, err := gen.Continuations(ctx, prompt, sampler.Settings{MaxTokens: 64})
		if err != nil {
			return nil, err
		}
		text, err := tok.Decode(replies[0])
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{q, strings.TrimSpace(string(text))})
	}
	return out, nil
}
