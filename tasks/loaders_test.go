package tasks

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"gochat/tokenizer"
)

// goldenTask is the golden rows' conversations as a task, with nanochat's ids and masks of
// each (cut at 2048 tokens).
func goldenTask(t *testing.T) (Task, [][]int, [][]int8, *tokenizer.Tokenizer) {
	raw, _ := os.ReadFile("../testdata/golden/render/nanochat_render.json")
	var cases []renderCase
	json.Unmarshal(raw, &cases)
	var exs []Example
	var ids [][]int
	var masks [][]int8
	for _, c := range cases {
		if c.MaxTokens != tokenizer.DefaultMaxTokens {
			continue
		}
		ex, err := convert(c.Task, c.Row)
		if err != nil {
			t.Fatal(err)
		}
		exs, ids, masks = append(exs, ex), append(ids, c.IDs), append(masks, c.Mask)
	}
	tok, err := tokenizer.Load("../testdata/golden/render/tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	return Rows[Example]{Rows: exs, Convert: func(e Example) (Example, error) { return e, nil }}, ids, masks, tok
}

// TestSFTBatches: each row is a conversation's ids but the last, its targets the ids but the
// first where nanochat's mask trains them, the rest padding that no loss counts; rows go
// through the task in order and round again.
func TestSFTBatches(t *testing.T) {
	task, ids, masks, tok := goldenTask(t)
	const B, T = 3, 160
	s := &SFT{Task: task, Tok: tok, B: B, T: T, World: 1}
	pad, _ := tok.Special("<|assistant_end|>")
	for batch := range 4 {
		inputs, targets, err := s.Batch()
		if err != nil {
			t.Fatal(err)
		}
		for row := range B {
			c := (batch*B + row) % task.Len()
			want, wantT := make([]int, T), make([]int, T)
			for i := range want {
				want[i], wantT[i] = pad, IgnoreIndex
			}
			for i := range len(ids[c]) - 1 {
				want[i] = ids[c][i]
				if masks[c][i+1] == 1 {
					wantT[i] = ids[c][i+1]
				}
			}
			if !slices.Equal(inputs[row*T:(row+1)*T], want) || !slices.Equal(targets[row*T:(row+1)*T], wantT) {
				t.Fatalf("batch %d row %d (conversation %d) is not nanochat's", batch, row, c)
			}
		}
	}
	if s.Epoch != 1 || s.Conv != (4*B)%task.Len() {
		t.Errorf("after 12 rows of %d: epoch %d, next %d", task.Len(), s.Epoch, s.Conv)
	}
	if s.Truncated != 0 {
		t.Errorf("%d conversations cut to rows of %d; none is longer", s.Truncated, T)
	}
	short := &SFT{Task: task, Tok: tok, B: B, T: 8, World: 1}
	if _, _, err := short.Batch(); err != nil || short.Truncated != B {
		t.Errorf("rows of 8: %d of %d conversations counted as cut (%v)", short.Truncated, B, err)
	}
}

// TestMidStream: the batches are the conversations' ids one after another, B·T+1 at a time
// with the last not reused, and a loader started at a saved position goes on exactly.
func TestMidStream(t *testing.T) {
	task, ids, _, tok := goldenTask(t)
	var stream []int
	for range 3 {
		for _, x := range ids {
			stream = append(stream, x...)
		}
	}
	const B, T = 2, 64
	m := &Mid{Task: task, Tok: tok, B: B, T: T, World: 1}
	at := 0
	batches := len(stream)/2/(B*T+1) + 1 // past the end of the first pass
	for batch := range batches {
		if batch == 3 { // resume from the position saved now
			m = &Mid{Task: task, Tok: tok, B: B, T: T, World: 1, Position: m.Position}
		}
		inputs, targets, err := m.Batch()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(inputs, stream[at:at+B*T]) || !slices.Equal(targets, stream[at+1:at+B*T+1]) {
			t.Fatalf("batch %d is not the stream at %d", batch, at)
		}
		at += B*T + 1
	}
	if m.Epoch < 1 {
		t.Errorf("%d batches of %d tokens did not go round a task of %d conversations", batches, B*T+1, task.Len())
	}

	// Masked: the same stream, its targets ignored where the rendering's mask is 0.
	_, _, masks, _ := goldenTask(t)
	var trained []int8
	for range 3 {
		for _, x := range masks {
			trained = append(trained, x...)
		}
	}
	m = &Mid{Task: task, Tok: tok, B: B, T: T, World: 1, Masked: true}
	inputs, targets, err := m.Batch()
	if err != nil {
		t.Fatal(err)
	}
	ignored := 0
	for i, tg := range targets {
		want := stream[i+1]
		if trained[i+1] == 0 {
			want, ignored = IgnoreIndex, ignored+1
		}
		if inputs[i] != stream[i] || tg != want {
			t.Fatalf("masked stream: position %d has %d → %d, want %d → %d", i, inputs[i], tg, stream[i], want)
		}
	}
	if ignored == 0 || ignored == len(targets) {
		t.Errorf("%d of %d targets ignored", ignored, len(targets))
	}
}
