package tasks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// rowQuestion is the text of row k of every test file: what its example must quote.
func rowQuestion(k int) string { return fmt.Sprintf("question %d", k) }

// writeHF writes rows from..from+n-1 of a split of dataset (its name, or
// "mmlu/auxiliary_train") in HuggingFace's layout as a parquet file at path.
func writeHF(t *testing.T, path, dataset string, from, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	switch dataset {
	case "smoltalk":
		err = parquet.WriteFile(path, rowsOf(from, n, func(k int) SmolTalkFile {
			return SmolTalkFile{Messages: []SmolTalkMessage{{Role: "user", Content: rowQuestion(k)}, {Role: "assistant", Content: "an answer"}}}
		}))
	case "mmlu", "mmlu/auxiliary_train":
		mmlu := func(k int) MMLUFile {
			return MMLUFile{Question: rowQuestion(k), Subject: "anatomy", Choices: []string{"w", "x", "y", "z"}, Answer: int64(k % 4)}
		}
		if dataset == "mmlu" {
			err = parquet.WriteFile(path, rowsOf(from, n, mmlu))
		} else {
			err = parquet.WriteFile(path, rowsOf(from, n, func(k int) MMLUAuxiliaryFile { return MMLUAuxiliaryFile{Train: mmlu(k)} }))
		}
	case "gsm8k":
		err = parquet.WriteFile(path, rowsOf(from, n, func(k int) GSM8KFile {
			return GSM8KFile{Question: rowQuestion(k), Answer: "2+2=<<2+2=4>>4\n#### 4"}
		}))
	case "arc-easy", "arc-challenge":
		err = parquet.WriteFile(path, rowsOf(from, n, func(k int) ARCFile {
			r := ARCFile{ID: fmt.Sprint("id", k), Question: rowQuestion(k), AnswerKey: "B"}
			r.Choices.Text, r.Choices.Label = []string{"p", "q", "r"}, []string{"A", "B", "C"}
			return r
		}))
	case "humaneval":
		err = parquet.WriteFile(path, rowsOf(from, n, func(k int) HumanEvalFile {
			return HumanEvalFile{TaskID: fmt.Sprint("HumanEval/", k), Prompt: rowQuestion(k), CanonicalSolution: "    return 1\n",
				Test: "def check(f):\n    assert f() == 1\n", EntryPoint: "f"}
		}))
	default:
		t.Fatalf("no test layout for %s", dataset)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func rowsOf[F any](from, n int, row func(k int) F) []F {
	rows := make([]F, n)
	for i := range rows {
		rows[i] = row(from + i)
	}
	return rows
}

// layoutName is the test layout of a split: its dataset's, or mmlu's auxiliary one.
func layoutName(d Dataset, s Split) string {
	if s.Config == "auxiliary_train" {
		return "mmlu/auxiliary_train"
	}
	return d.Name
}

// writeIdentity writes n identity conversations as JSONL at path.
func writeIdentity(t *testing.T, path string, n int) {
	t.Helper()
	var b strings.Builder
	for k := range n {
		fmt.Fprintf(&b, `[{"role":"user","content":%q},{"role":"assistant","content":"I am nanochat."}]`+"\n", rowQuestion(k))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkRows checks that a task's examples are rows 0..n-1 of the test files, in order.
func checkRows(t *testing.T, what string, task Task, n int) {
	t.Helper()
	if task.Len() != n {
		t.Fatalf("%s: %d examples, want %d", what, task.Len(), n)
	}
	for i := range n {
		ex, err := task.Example(i)
		if err != nil {
			t.Fatalf("%s example %d: %v", what, i, err)
		}
		if first := ex.Messages[0].Text; !strings.Contains(first, rowQuestion(i)+"\n") && first != rowQuestion(i) {
			t.Fatalf("%s example %d asks %q, want %q", what, i, first, rowQuestion(i))
		}
	}
}

// TestOpenEverySplit: every split of the catalog, written in its dataset's published
// layout (the first HuggingFace split as two files), reads back with its rows in order;
// MMLU's auxiliary_train is unwrapped from its "train" column.
func TestOpenEverySplit(t *testing.T) {
	root := t.TempDir()
	first := true
	for _, d := range Catalog {
		for _, s := range d.Splits {
			what := d.Name + " " + s.Name
			if d.Repo == "" {
				writeIdentity(t, d.File(root), 3)
				task, err := Open(root, d.Name, s.Name)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				checkRows(t, what, task, 3)
				continue
			}
			n := 5
			if first { // a split of several files, read in their order
				writeHF(t, filepath.Join(d.Dir(root, s), "0000.parquet"), layoutName(d, s), 0, 3)
				writeHF(t, filepath.Join(d.Dir(root, s), "0001.parquet"), layoutName(d, s), 3, 2)
				first = false
			} else {
				writeHF(t, filepath.Join(d.Dir(root, s), "0000.parquet"), layoutName(d, s), 0, n)
			}
			task, err := Open(root, d.Name, s.Name)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			checkRows(t, what, task, n)
			if d.Name == "mmlu" {
				ex, _ := task.Example(1)
				if ex.Subject != "anatomy" || ex.Messages[1].Text != "B" {
					t.Errorf("%s: subject %q, answer %q; want anatomy, B", what, ex.Subject, ex.Messages[1].Text)
				}
			}
		}
	}
}

// TestParquetGoZeroFills is why Open checks columns: parquet-go reads a file lacking the
// layout's columns as rows of zero values, without an error (here MMLU's auxiliary_train
// read as the other splits' flat layout).
func TestParquetGoZeroFills(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0000.parquet")
	writeHF(t, path, "mmlu/auxiliary_train", 0, 2)
	task, err := ReadMMLU(path)
	if err != nil {
		t.Skipf("parquet-go now refuses a file without the columns (%v); Open's check is belt and braces", err)
	}
	if r := task.(Rows[MMLURow]).Rows[0]; r.Question != "" || len(r.Choices) != 0 {
		t.Fatalf("read a wrapped row flat as %+v", r)
	}
	if err := checkColumns(path, MMLUFile{}); err == nil || !strings.Contains(err.Error(), "no column question") {
		t.Errorf("checkColumns: %v", err)
	}
}

// TestOpenErrors: each way Open can fail says what is wrong, and what to do, in one line.
func TestOpenErrors(t *testing.T) {
	root := t.TempDir()
	mmlu, _ := Lookup("mmlu")
	aux, _ := mmlu.Split("auxiliary_train")
	test, _ := mmlu.Split("test")
	writeHF(t, filepath.Join(mmlu.Dir(root, aux), "0000.parquet"), "mmlu", 0, 2) // the flat layout where the wrapped one belongs
	writeHF(t, filepath.Join(mmlu.Dir(root, test), "0000.parquet"), "gsm8k", 0, 2)
	os.WriteFile(filepath.Join(root, "broken.parquet"), []byte("not parquet"), 0o644)
	os.MkdirAll(filepath.Join(root, "gsm8k", "train"+partialSuffix), 0o755)
	for _, c := range []struct {
		name, split string
		want        []string
	}{
		{"mmlu-pro", "test", []string{`no dataset "mmlu-pro"`, "smoltalk, mmlu, gsm8k, arc-easy, arc-challenge", "identity"}},
		{"mmlu", "train", []string{`mmlu has no split "train"`, "test, validation, dev, auxiliary_train"}},
		{"gsm8k", "test", []string{"gsm8k test:", filepath.Join(root, "gsm8k", "test") + " is missing", "run gochat data download --task gsm8k"}},
		{"gsm8k", "train", []string{"interrupted download", "--task gsm8k to finish it"}},
		{"identity", "train", []string{"identity_conversations.jsonl is missing", "--task identity"}},
		{"mmlu", "auxiliary_train", []string{filepath.Join(mmlu.Dir(root, aux), "0000.parquet"), "no column train.question"}},
		{"mmlu", "test", []string{filepath.Join(mmlu.Dir(root, test), "0000.parquet"), "no column subject", "it has question, answer"}},
	} {
		_, err := Open(root, c.name, c.split)
		if err == nil {
			t.Errorf("Open(%s, %s): no error", c.name, c.split)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Open(%s, %s): %v\nwant one line with %q", c.name, c.split, err, w)
			}
		}
	}
	if err := checkColumns(filepath.Join(root, "broken.parquet"), GSM8KFile{}); err == nil || !strings.Contains(err.Error(), "not a readable parquet file") {
		t.Errorf("a file that is not parquet: %v", err)
	}
	// A column of the right name and the wrong type.
	type wrongType struct {
		Question string `parquet:"question,optional"`
		Answer   int64  `parquet:"answer,optional"`
	}
	path := filepath.Join(root, "typed.parquet")
	parquet.WriteFile(path, []wrongType{{"q", 4}})
	if err := checkColumns(path, GSM8KFile{}); err == nil || !strings.Contains(err.Error(), "column answer is INT64, want BYTE_ARRAY") {
		t.Errorf("a column of the wrong type: %v", err)
	}
}
