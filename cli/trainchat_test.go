package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gochat/graph"
	"gochat/tasks"
	"gochat/tokenizer"
)

// chatStagesHome makes a GOCHAT_HOME with a byte-level tokenizer, a d1 base model and the
// splits nanochat's chat stages read, a few rows each.
func chatStagesHome(t *testing.T) string {
	home := t.TempDir()
	tok, err := tokenizer.New(append(tokenizer.ByteTokens(), []byte("##"), []byte("####"), []byte("#### ")))
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(filepath.Join(home, "tokenizer")); err != nil {
		t.Fatal(err)
	}
	cfg := graph.ConfigForDepth(1, tok.VocabSize(), 64)
	saveModel(t, home, cfg, graph.InitWeights(cfg, 1), tok, "base_checkpoints")
	smol := func(n int) []tasks.SmolTalkFile {
		rows := make([]tasks.SmolTalkFile, n)
		for i := range rows {
			rows[i].Messages = []tasks.SmolTalkMessage{{Content: fmt.Sprintf("Say %d.", i), Role: "user"}, {Content: fmt.Sprint(i), Role: "assistant"}}
		}
		return rows
	}
	mmlu := func(n int) []tasks.MMLUFile {
		rows := make([]tasks.MMLUFile, n)
		for i := range rows {
			rows[i] = tasks.MMLUFile{Question: fmt.Sprintf("Question %d?", i), Subject: "math", Choices: []string{"a", "b", "c", "d"}, Answer: int64(i % 4)}
		}
		return rows
	}
	gsm8k := func(n int) []tasks.GSM8KFile {
		rows := make([]tasks.GSM8KFile, n)
		for i := range rows {
			rows[i] = tasks.GSM8KFile{Question: fmt.Sprintf("What is %d+1?", i), Answer: fmt.Sprintf("<<%d+1=%d>>%d\n#### %d", i, i+1, i+1, i+1)}
		}
		return rows
	}
	writeSplit(t, home, "smoltalk", "train", smol(40))
	writeSplit(t, home, "smoltalk", "test", smol(8))
	aux := make([]tasks.MMLUAuxiliaryFile, 20)
	for i, r := range mmlu(20) {
		aux[i].Train = r
	}
	writeSplit(t, home, "mmlu", "auxiliary_train", aux)
	writeSplit(t, home, "mmlu", "test", mmlu(8))
	writeSplit(t, home, "gsm8k", "train", gsm8k(20))
	writeSplit(t, home, "gsm8k", "test", gsm8k(4))
	writeSplit(t, home, "arc-easy", "train", arcFixtures("A", "B", "C", "D"))
	writeSplit(t, home, "arc-easy", "test", arcFixtures("A", "B", "C", "D"))
	writeSplit(t, home, "arc-challenge", "train", arcFixtures("B", "C"))
	return home
}

// TestTrainChatStages: the binary takes a base checkpoint through mid-training, SFT (with
// MMLU and ARC-Easy accuracies) and RL on the downloaded datasets' layout, each writing its
// run folder and its section of the report card; the chat commands load the result.
func TestTrainChatStages(t *testing.T) {
	home := chatStagesHome(t)
	for _, c := range []struct {
		args   []string
		folder string
		want   []string
	}{
		{[]string{"train", "mid", "-g", "d1", "--max-seq-len", "64", "--device-batch-size", "2", "--total-batch-size", "128", "--eval-every", "10", "--eval-tokens", "256"},
			"mid_checkpoints", []string{"identity conversations are not downloaded", "mid training from", "validation bpb", "minimum validation bpb"}},
		{[]string{"train", "sft", "-g", "d1", "--max-seq-len", "96", "--device-batch-size", "2", "--target-examples-per-step", "4", "--eval-every", "4", "--eval-steps", "2", "--eval-metrics-every", "0", "--eval-metrics-max-problems", "4"},
			"chatsft_checkpoints", []string{"validation loss", "arc_easy_acc: ", "mmlu_acc: ", "talk to it: gochat chat -i sft -g d1"}},
		{[]string{"train", "rl", "-g", "d1", "--max-seq-len", "64", "--device-batch-size", "2", "--examples-per-step", "2", "--num-samples", "2", "--max-new-tokens", "8", "--num-iterations", "3", "--eval-every", "2", "--eval-examples", "2"},
			"chatrl_checkpoints", []string{"pass@2: ", "| reward: ", "last step's mean reward"}},
	} {
		out, stderr, err := inHome(t, home, c.args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s\n%s", c.args, err, stderr, out)
		}
		for _, want := range c.want {
			if !strings.Contains(out, want) {
				t.Errorf("%s %s: the output lacks %q:\n%s", c.args[0], c.args[1], want, out)
			}
		}
		if _, err := os.Stat(filepath.Join(home, c.folder, "d1", "metrics.jsonl")); err != nil {
			t.Error(err)
		}
	}
	if _, stderr, err := inHome(t, home, "train", "mid", "-g", "d1"); err == nil || !strings.Contains(stderr, "already holds a run") {
		t.Errorf("a new mid run over the old one: %v %s", err, stderr)
	}
	if out, stderr, err := inHome(t, home, "chat", "-i", "rl", "-g", "d1", "-p", "What is 2+1?", "--max-tokens", "4"); err != nil {
		t.Errorf("chat with the RL model: %v %s %s", err, stderr, out)
	}
	if out, stderr, err := inHome(t, home, "eval", "chat", "-i", "sft", "-g", "d1", "-a", "ARC-Easy", "-x", "4"); err != nil {
		t.Fatalf("eval chat: %v %s %s", err, stderr, out)
	}
	out, _, err := inHome(t, home, "report")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(home, "report", "report.md"))
	for _, want := range []string{"## Mid-training", "## SFT", "| mmlu_acc |", "## Chat evaluation of the sft model", "## RL", "| mean reward |",
		"chat-rl-reward.png", "| ARC-Easy | - | - | 0."} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("report card lacks %q (%s):\n%s", want, out, raw)
		}
	}
}

// TestTrainChatStageErrors: a wrong source, missing datasets and an RL width too small
// for its prompts are one line each.
func TestTrainChatStageErrors(t *testing.T) {
	home := chatStagesHome(t)
	os.RemoveAll(filepath.Join(home, "tasks", "arc-easy"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "mid", "-i", "mid"}, "--source \"mid\": want the checkpoint of an earlier stage"},
		{[]string{"train", "sft", "-i", "base", "-g", "d1"}, "run gochat data download --task arc-easy"},
		{[]string{"train", "rl", "-i", "base", "-g", "d1", "--max-seq-len", "16", "--max-new-tokens", "8"}, "max_seq_len must be at least"},
		{[]string{"train", "sft", "-g", "d1"}, "no run \"d1\""},
	} {
		out, stderr, err := inHome(t, home, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "panic") {
			t.Errorf("%v: %v, want %q:\n%s\n%s", c.args, err, c.want, stderr, out)
		}
	}
}
