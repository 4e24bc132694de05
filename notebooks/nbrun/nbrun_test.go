package nbrun

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The test notebook, built and run: declarations across cells, := variables seen by later
// cells, an unused variable, each cell's last expression shown when it has a value (text,
// an image), Display, and the expectations checked in order.
func TestRunsANotebookAsTheKernelWould(t *testing.T) {
	nb, err := Read("testdata/demo.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	if len(nb.Cells) != 8 || len(nb.Expect) != 6 {
		t.Fatalf("read %d code cells and %d expectations, want 8 and 6", len(nb.Cells), len(nb.Expect))
	}
	bin := build(t, nb)
	images := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "GOCHAT_NOTEBOOK_OUT="+images)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := nb.Check(out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := strings.Count(string(out), "a call with no value"); got != 1 {
		t.Errorf("a void call's output appears %d times:\n%s", got, out)
	}
	if strings.Contains(string(out), "a variable no line uses") {
		t.Errorf("a cell whose last statement is not an expression showed a value:\n%s", out)
	}
	for _, name := range []string{"1.png", "2.png"} {
		if _, err := os.Stat(filepath.Join(images, name)); err != nil {
			t.Errorf("image not written: %v", err)
		}
	}
	nb.Expect = append(nb.Expect, "n is 16")
	if err := nb.Check(out); err == nil {
		t.Error("an expectation met only before the one ahead of it passed")
	}
}

// A panic names the notebook, cell and line.
func TestPanicsCiteTheCell(t *testing.T) {
	nb := &Notebook{Name: "bad.ipynb", Cells: []string{"x := 1\n", "var s []int\n_ = x\n_ = s[x]\n"}}
	bin := build(t, nb)
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bad.ipynb#2:3") {
		t.Fatalf("a panic in cell 2, line 3: err %v, output:\n%s", err, out)
	}
}

// build builds nb's program in a temporary folder of the module and returns its path.
func build(t *testing.T, nb *Notebook) string {
	t.Helper()
	work, err := os.MkdirTemp(".", "_run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	bins, err := Build("../..", work, []*Notebook{nb})
	if err != nil {
		t.Fatal(err)
	}
	return bins[0]
}
