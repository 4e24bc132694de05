package docs

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gochat/loader"
	"gochat/tasks"

	"github.com/parquet-go/parquet-go"
)

// servedDownloads serves on loopback, in their real layouts, everything the guides
// download: FineWeb's shards and the chat datasets (a HuggingFace Hub mirror, as
// HF_ENDPOINT names one), the identity conversations and CORE's eval bundle; it returns
// the environment that points gochat at them.
func servedDownloads(t *testing.T, root string) []string {
	served := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(served)))
	t.Cleanup(srv.Close)
	writeShards(t, filepath.Join(served, filepath.FromSlash(loader.FineWebPath)))
	for _, d := range tasks.Catalog {
		if d.Repo == "" {
			continue
		}
		for _, s := range d.Splits {
			file := "/files/" + d.Name + "/" + s.Name + "/0000.parquet"
			writeParquet(t, filepath.Join(served, filepath.FromSlash(file)), d.Name, s.Name)
			listing := filepath.Join(served, "api", "datasets", filepath.FromSlash(d.Repo), "parquet", s.Config, s.HFSplit)
			writeFile(t, listing, fmt.Sprintf("[%q]", srv.URL+file))
		}
	}
	var identity strings.Builder
	for _, name := range []string{"gochat", "a small GPT trained with gochat"} {
		conv, _ := json.Marshal([]map[string]string{{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am " + name + "."}})
		identity.Write(append(conv, '\n'))
	}
	writeFile(t, filepath.Join(served, "identity_conversations.jsonl"), identity.String())
	zipBundle(t, filepath.Join(root, "testdata", "golden", "core", "bundle"), filepath.Join(served, "eval_bundle.zip"))
	return []string{"HF_ENDPOINT=" + srv.URL, "GOCHAT_IDENTITY_URL=" + srv.URL + "/identity_conversations.jsonl",
		"GOCHAT_EVAL_BUNDLE_URL=" + srv.URL}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeShards writes FineWeb's first four shards and its last (which validates) into dir,
// their documents Go's source files, a package per shard or two.
func writeShards(t *testing.T, dir string) {
	packages := []string{"strings", "bytes", "strconv", "bufio", "sort", "unicode/utf8", "errors", "path", "fmt", "text/tabwriter"}
	for i, shard := range []int{0, 1, 2, 3, loader.FineWebShards - 1} {
		var docs []string
		for _, pkg := range packages[2*i : 2*i+2] {
			files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", filepath.FromSlash(pkg), "*.go"))
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				docs = append(docs, string(src))
			}
		}
		os.MkdirAll(dir, 0o755)
		if err := loader.WriteShardGroups(filepath.Join(dir, loader.ShardName(shard)), docs, 16); err != nil {
			t.Fatal(err)
		}
	}
}

// writeParquet writes a split of a chat dataset in its published layout: a few rows of
// the kind it holds (conversations, multiple choice, word problems, Python functions).
func writeParquet(t *testing.T, path, dataset, split string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	var err error
	switch dataset {
	case "smoltalk":
		rows := make([]tasks.SmolTalkFile, 48)
		for i := range rows {
			rows[i].Messages = []tasks.SmolTalkMessage{{Role: "user", Content: fmt.Sprintf("Name a number after %d.", i)},
				{Role: "assistant", Content: fmt.Sprintf("%d comes after %d.", i+1, i)}}
		}
		err = parquet.WriteFile(path, rows)
	case "mmlu":
		rows := make([]tasks.MMLUFile, 12)
		for i := range rows {
			rows[i] = tasks.MMLUFile{Question: fmt.Sprintf("What is %d times 2?", i), Subject: "elementary_mathematics",
				Choices: []string{fmt.Sprint(2 * i), fmt.Sprint(2*i + 1), fmt.Sprint(i), fmt.Sprint(i + 2)}, Answer: 0}
		}
		if split == "auxiliary_train" {
			aux := make([]tasks.MMLUAuxiliaryFile, len(rows))
			for i, r := range rows {
				aux[i].Train = r
			}
			err = parquet.WriteFile(path, aux)
		} else {
			err = parquet.WriteFile(path, rows)
		}
	case "gsm8k":
		rows := make([]tasks.GSM8KFile, 32) // two of RL's steps of 16
		for i := range rows {
			rows[i] = tasks.GSM8KFile{Question: fmt.Sprintf("Ann has %d apples and buys 3 more. How many has she?", i),
				Answer: fmt.Sprintf("She has %d+3 = <<%d+3=%d>>%d apples.\n#### %d", i, i, i+3, i+3, i+3)}
		}
		err = parquet.WriteFile(path, rows)
	case "arc-easy", "arc-challenge":
		rows := make([]tasks.ARCFile, 8)
		for i := range rows {
			rows[i] = tasks.ARCFile{ID: fmt.Sprintf("%s-%s-%d", dataset, split, i), Question: "Which of these is a liquid at room temperature?",
				Choices:   tasks.ARCChoices{Text: []string{"water", "iron", "salt", "wood"}, Label: []string{"A", "B", "C", "D"}},
				AnswerKey: "A"}
		}
		err = parquet.WriteFile(path, rows)
	case "humaneval":
		rows := make([]tasks.HumanEvalFile, 4)
		for i := range rows {
			rows[i] = tasks.HumanEvalFile{TaskID: fmt.Sprintf("HumanEval/%d", i), EntryPoint: "add",
				Prompt:            "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n",
				CanonicalSolution: "    return a + b\n",
				Test:              "def check(candidate):\n    assert candidate(2, 3) == 5\n"}
		}
		err = parquet.WriteFile(path, rows)
	default:
		t.Fatalf("no fixture for the dataset %q", dataset)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// zipBundle zips the eval bundle in dir as nanochat's eval_bundle.zip is laid out: the
// files under one folder, eval_bundle/.
func zipBundle(t *testing.T, dir, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out, err := w.Create("eval_bundle/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		src, err := os.ReadFile(p)
		if err == nil {
			_, err = out.Write(src)
		}
		return err
	})
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}
