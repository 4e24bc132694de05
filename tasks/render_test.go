package tasks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"gochat/tokenizer"

	"github.com/parquet-go/parquet-go"
)

// renderCase is a case of nanochat_render.json: a dataset row as published, what
// nanochat's task made of it, and nanochat's rendering of that.
type renderCase struct {
	Task          string          `json:"task"`
	Row           json.RawMessage `json:"row"`
	MaxTokens     int             `json:"max_tokens"`
	Conversation  json.RawMessage `json:"conversation"`
	IDs           []int           `json:"ids"`
	Mask          []int8          `json:"mask"`
	CompletionIDs []int           `json:"completion_ids"`
}

// convert is each task's conversion of a row.
func convert(task string, row json.RawMessage) (Example, error) {
	switch task {
	case "smoltalk":
		return decodeAs(row, SmolTalk)
	case "conversation": // a conversation given as it is
		return decodeAs(row, func(r SmolTalkRow) (Example, error) {
			return Example{Conversation: tokenizer.Conversation{Messages: r.Messages}}, nil
		})
	case "mmlu":
		return decodeAs(row, MMLU)
	case "arc":
		return decodeAs(row, ARC)
	case "gsm8k":
		return decodeAs(row, GSM8K)
	}
	panic("unknown task " + task)
}

// decodeAs reads a JSON row as R and converts it.
func decodeAs[R any](row json.RawMessage, convert func(R) (Example, error)) (Example, error) {
	var r R
	if err := json.Unmarshal(row, &r); err != nil {
		return Example{}, err
	}
	return convert(r)
}

// asNanochat is an example as nanochat's task returns it: the conversation dict with its
// "letters" and "subject" when it has them.
func asNanochat(t *testing.T, ex Example) any {
	d := map[string]any{"messages": ex.Messages}
	if ex.Letters != nil {
		d["letters"] = ex.Letters
	}
	if ex.Subject != "" {
		d["subject"] = ex.Subject
	}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(raw, &v)
	return v
}

// TestRenderMatchesNanochat: on rows in each dataset's published schema, every task makes
// the conversation nanochat's task makes, and it renders to nanochat's token ids, training
// mask and completion prompt (testdata/golden/render, from nanochat's own code).
func TestRenderMatchesNanochat(t *testing.T) {
	raw, err := os.ReadFile("../testdata/golden/render/nanochat_render.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []renderCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load("../testdata/golden/render/tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		ex, err := convert(c.Task, c.Row)
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, c.Task, err)
		}
		var want any
		json.Unmarshal(c.Conversation, &want)
		if got := asNanochat(t, ex); !reflect.DeepEqual(got, want) {
			t.Errorf("case %d (%s): conversation\n%v\nwant\n%v", i, c.Task, got, want)
		}
		ids, mask, err := tok.RenderConversation(ex.Conversation, c.MaxTokens)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !slices.Equal(ids, c.IDs) || !slices.Equal(mask, c.Mask) {
			t.Errorf("case %d (%s): rendering differs from nanochat's", i, c.Task)
		}
		completion, err := tok.RenderForCompletion(ex.Conversation)
		if err != nil || !slices.Equal(completion, c.CompletionIDs) {
			t.Errorf("case %d (%s): completion prompt differs from nanochat's (%v)", i, c.Task, err)
		}
	}
}

// writeRow writes one golden row, read into the file layout F, as a parquet file.
func writeRow[F any](t *testing.T, row json.RawMessage) string {
	var f F
	if err := json.Unmarshal(row, &f); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rows.parquet")
	if err := parquet.WriteFile(path, []F{f}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestParquetRows: the golden rows written in HuggingFace's parquet layout of each dataset
// (nested lists and structs) read back into the conversations nanochat makes of them.
func TestParquetRows(t *testing.T) {
	raw, _ := os.ReadFile("../testdata/golden/render/nanochat_render.json")
	var cases []renderCase
	json.Unmarshal(raw, &cases)
	read := 0
	for i, c := range cases {
		var task Task
		var err error
		switch c.Task {
		case "smoltalk":
			task, err = ReadSmolTalk(writeRow[SmolTalkFile](t, c.Row))
		case "mmlu":
			task, err = ReadMMLU(writeRow[MMLUFile](t, c.Row))
		case "arc":
			task, err = ReadARC(writeRow[ARCFile](t, c.Row))
		case "gsm8k":
			task, err = ReadGSM8K(writeRow[GSM8KFile](t, c.Row))
		default:
			continue
		}
		if err != nil || task.Len() != 1 {
			t.Fatalf("case %d (%s): %v", i, c.Task, err)
		}
		ex, err := task.Example(0)
		if err != nil {
			t.Fatal(err)
		}
		var want any
		json.Unmarshal(c.Conversation, &want)
		if got := asNanochat(t, ex); !reflect.DeepEqual(got, want) {
			t.Errorf("case %d (%s) from parquet:\n%v\nwant\n%v", i, c.Task, got, want)
		}
		read++
	}
	if read != 11 {
		t.Errorf("read %d golden rows from parquet, want 11", read)
	}
	if _, err := ReadGSM8K(filepath.Join(t.TempDir(), "missing.parquet")); err == nil {
		t.Error("a missing file")
	}
}
