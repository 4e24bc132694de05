package tasks

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestArithmetic: the problems render as GSM8K's solutions do, with the calculator call
// and its output, and their own answer is judged right, another answer wrong.
func TestArithmetic(t *testing.T) {
	task := Arithmetic(50, 7)
	if task.Len() != 50 {
		t.Fatalf("%d problems", task.Len())
	}
	for i := range task.Len() {
		ex, err := task.Example(i)
		if err != nil {
			t.Fatal(err)
		}
		parts := ex.Messages[1].Parts
		if len(parts) != 4 || parts[1].Type != "python" || parts[2].Type != "python_output" {
			t.Fatalf("problem %d: parts %+v", i, parts)
		}
		answer := parts[2].Text
		if !CorrectGSM8K(ex, "so #### "+answer) || CorrectGSM8K(ex, "#### "+answer+"1") || strings.Contains(ex.Messages[0].Text, "%!") {
			t.Fatalf("problem %d (%q): the judge is wrong about its answer %s", i, ex.Messages[0].Text, answer)
		}
	}
	a, _ := Arithmetic(3, 1).Example(0)
	b, _ := Arithmetic(3, 1).Example(0)
	if a.Messages[0].Text != b.Messages[0].Text {
		t.Error("the same seed drew other problems")
	}
	two := TwoStepArithmetic(50, 8)
	for i := range two.Len() {
		ex, _ := two.Example(i)
		parts := ex.Messages[1].Parts
		if len(parts) != 7 || parts[4].Type != "python" || !strings.HasPrefix(parts[4].Text, parts[2].Text) {
			t.Fatalf("two-step problem %d: parts %+v", i, parts)
		}
		if !CorrectGSM8K(ex, "#### "+parts[5].Text) || strings.Contains(ex.Messages[0].Text, "%!") || strings.HasPrefix(parts[5].Text, "-") {
			t.Fatalf("two-step problem %d (%q): answer %s", i, ex.Messages[0].Text, parts[5].Text)
		}
	}
}

// TestGoDocs: a conversation for each documented library package of Go's source tree,
// answered with its comment's first paragraph; commands, internal packages and packages
// without a comment are left out.
func TestGoDocs(t *testing.T) {
	task, err := GoDocs(filepath.Join(runtime.GOROOT(), "src"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := range task.Len() {
		ex, _ := task.Example(i)
		q, a := ex.Messages[0].Text, ex.Messages[1].Text
		if strings.Contains(q, "internal/") || strings.Contains(q, " cmd/") {
			t.Errorf("asked about %q", q)
		}
		if strings.Contains(q, " strings ") || strings.HasSuffix(q, " strings?") {
			found = strings.HasPrefix(a, `strings (import "strings"): Package strings implements simple functions`)
		}
	}
	if task.Len() < 100 || !found {
		t.Errorf("%d packages; strings found with its comment: %v", task.Len(), found)
	}

	src := t.TempDir()
	for path, text := range map[string]string{
		"a/doc.go":    "// Package a adds.\n//\n// More text.\npackage a\n",
		"a/a.go":      "package a\n",
		"b/b.go":      "package b\n",
		"c/main.go":   "// Command c runs.\npackage main\n",
		"d/x/x.go":    "// Package x is nested.\npackage x\n",
		"e/e_test.go": "// Package e only in a test.\npackage e\n",
	} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(path)), 0o755)
		os.WriteFile(filepath.Join(src, path), []byte(text), 0o644)
	}
	task, err = GoDocs(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range task.Len() {
		ex, _ := task.Example(i)
		got = append(got, ex.Messages[1].Text)
	}
	if strings.Join(got, "|") != `a (import "a"): Package a adds.|x (import "d/x"): Package x is nested.` {
		t.Errorf("answers %q", got)
	}
}
