package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gochat/tasks"

	"github.com/parquet-go/parquet-go"
)

// TestDataDownloadTask runs `data download --task gsm8k` against a local stand-in for the
// HuggingFace Hub (its listings and files as static files), then opens what it fetched;
// a misspelt name is one line naming the datasets there are.
func TestDataDownloadTask(t *testing.T) {
	served := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(served)))
	defer srv.Close()
	type row struct {
		Question string `parquet:"question,optional"`
		Answer   string `parquet:"answer,optional"`
	}
	for _, split := range []string{"train", "test"} {
		file := filepath.Join(served, "files", split+".parquet")
		os.MkdirAll(filepath.Dir(file), 0o755)
		if err := parquet.WriteFile(file, []row{{"What is 2+2?", "<<2+2=4>>4\n#### 4"}, {"And 3+3?", "#### 6"}}); err != nil {
			t.Fatal(err)
		}
		listing := filepath.Join(served, "api", "datasets", "openai", "gsm8k", "parquet", "main", split)
		os.MkdirAll(filepath.Dir(listing), 0o755)
		os.WriteFile(listing, []byte(fmt.Sprintf(`[%q]`, srv.URL+"/files/"+split+".parquet")), 0o644)
	}
	out := filepath.Join(t.TempDir(), "tasks")
	stdout, stderr, err := gochat(t, "data", "download", "--task", "gsm8k", "--base-url", srv.URL, "--out", out)
	if err != nil || !strings.Contains(stdout, "gsm8k in "+out) || !strings.Contains(stderr, "100%") {
		t.Fatalf("%v: %s %s", err, stdout, stderr)
	}
	for _, split := range []string{"train", "test"} {
		task, err := tasks.Open(out, "gsm8k", split)
		if err != nil || task.Len() != 2 {
			t.Errorf("gsm8k %s: %v", split, err)
		}
	}
	_, stderr, err = gochat(t, "data", "download", "--task", "gsm8k", "--task", "mmlu-pro", "--out", out)
	if err == nil || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, `no dataset "mmlu-pro"`) ||
		!strings.Contains(stderr, strings.Join(tasks.Names(), ", ")) {
		t.Errorf("a misspelt dataset: %v %q", err, stderr)
	}
}
