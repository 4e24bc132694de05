package tasks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gochat/tokenizer"
)

// numbered is a task whose example i says "name i".
func numbered(name string, n int) Task {
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	return Rows[int]{Rows: rows, Convert: func(i int) (Example, error) {
		return Example{Conversation: tokenizer.Conversation{Messages: []tokenizer.Message{{Role: "user", Text: fmt.Sprintf("%s %d", name, i)}}}}, nil
	}}
}

func texts(t *testing.T, task Task) []string {
	var out []string
	for i := range task.Len() {
		ex, err := task.Example(i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ex.Messages[0].Text)
	}
	return out
}

func TestViewsMixturesSequences(t *testing.T) {
	v, err := NewView(numbered("a", 10), 2, 9, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(texts(t, v), ","); got != "a 2,a 5,a 8" {
		t.Errorf("[2:9:3] of 10: %s", got)
	}
	if whole, _ := NewView(numbered("a", 10), 7, -1, 1); whole.Len() != 3 {
		t.Errorf("[7:] of 10 has %d examples", whole.Len())
	}
	for _, bad := range [][3]int{{-1, 5, 1}, {5, 3, 1}, {0, 5, 0}} {
		if _, err := NewView(numbered("a", 10), bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("the view %v was accepted", bad)
		}
	}
	if _, err := v.Example(3); err == nil {
		t.Error("an example past the view")
	}
	// The order of CPython's random.Random(42).shuffle of nanochat's index map.
	m := NewMixture(numbered("a", 3), numbered("b", 2), numbered("c", 4))
	if got := strings.Join(texts(t, m), ","); got != "b 0,c 1,c 2,b 1,c 3,a 2,c 0,a 0,a 1" {
		t.Errorf("mixture order %s", got)
	}
	// HuggingFace's shuffle(seed=42): numpy's default_rng(42).permutation(10).
	if got := strings.Join(texts(t, Shuffle(numbered("d", 10), 42)), ","); got != "d 5,d 6,d 0,d 7,d 3,d 2,d 4,d 9,d 1,d 8" {
		t.Errorf("shuffled %s", got)
	}
	s := Sequence{numbered("a", 2), numbered("b", 1)}
	if got := strings.Join(texts(t, s), ","); got != "a 0,a 1,b 0" {
		t.Errorf("sequence %s", got)
	}
	if _, err := s.Example(3); err == nil {
		t.Error("an example past the sequence")
	}
}

func TestEvaluation(t *testing.T) {
	ex, _ := GSM8K(GSM8KRow{Question: "q", Answer: "so <<1000*5=5000>>5000\n#### 5,000"})
	for reply, want := range map[string]bool{"#### 5000": true, "it is #### 5,000 nails": true, "#### 500": false, "5000": false} {
		if got := CorrectGSM8K(ex, reply); got != want {
			t.Errorf("reply %q: %v", reply, got)
		}
	}
	mc, _ := MMLU(MMLURow{Question: "q", Choices: []string{"w", "x", "y", "z"}, Answer: 2})
	if !CorrectChoice(mc, "C") || CorrectChoice(mc, "B") {
		t.Error("MMLU's answer letter is C")
	}
	for name, err := range map[string]error{
		"smoltalk roles": second(SmolTalk(SmolTalkRow{Messages: []tokenizer.Message{{Role: "assistant", Text: "a"}, {Role: "user", Text: "b"}}})),
		"smoltalk short": second(SmolTalk(SmolTalkRow{Messages: []tokenizer.Message{{Role: "system", Text: "s"}, {Role: "user", Text: "b"}}})),
		"mmlu choices":   second(MMLU(MMLURow{Choices: []string{"a"}})),
		"arc answer":     second(ARC(ARCRow{AnswerKey: "E"})),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func second(_ Example, err error) error { return err }

func TestCustomJSON(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	good := write("good.jsonl", `[{"role":"user","content":"Who are you?"},{"role":"assistant","content":"gochat, a small GPT."}]

[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"assistant","content":"d"}]
`)
	task, err := ReadCustomJSON(good)
	if err != nil || task.Len() != 2 {
		t.Fatalf("%v, %v", task, err)
	}
	if ex, _ := task.Example(1); len(ex.Messages) != 4 || ex.Messages[3].Text != "d" {
		t.Errorf("example 1: %+v", ex)
	}
	for name, text := range map[string]string{
		"bad.jsonl:2: want a JSON array": `[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]` + "\n{}\n",
		"1 messages":                     `[{"role":"user","content":"a"}]`,
		"want \"user\" text":             `[{"role":"assistant","content":"a"},{"role":"user","content":"b"}]`,
		"with 1 parts":                   `[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"text","text":"b"}]}]`,
	} {
		if _, err := ReadCustomJSON(write("bad.jsonl", text)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ReadCustomJSON(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Error("a missing file")
	}
}
