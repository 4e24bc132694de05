package tasks

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gochat/eval/sandbox"
	"gochat/tokenizer"

	"github.com/parquet-go/parquet-go"
)

// humanEvalRows are three problems in HumanEval's shape, written for these tests: one whose
// prompt imports from typing, one that imports math, one without imports.
var humanEvalRows = []HumanEvalRow{
	{
		TaskID: "Test/0",
		Prompt: "from typing import List\n\n\ndef running_max(numbers: List[int]) -> List[int]:\n" +
			"    \"\"\" The largest number so far at each position of the list.\n" +
			"    >>> running_max([1, 3, 2, 5])\n    [1, 3, 3, 5]\n    \"\"\"\n",
		CanonicalSolution: "    out = []\n    for n in numbers:\n        out.append(n if not out else max(out[-1], n))\n    return out\n",
		Test: "\n\nMETADATA = {'author': 'gochat'}\n\n\ndef check(candidate):\n    assert candidate([]) == []\n" +
			"    assert candidate([1, 3, 2, 5]) == [1, 3, 3, 5]\n    assert candidate([5, 4, 6]) == [5, 5, 6]\n",
		EntryPoint: "running_max",
	},
	{
		TaskID: "Test/1",
		Prompt: "import math\n\n\ndef is_square(n: int) -> bool:\n" +
			"    \"\"\" Whether n is the square of an integer.\n    >>> is_square(49)\n    True\n    \"\"\"\n",
		CanonicalSolution: "    return n >= 0 and math.isqrt(n) ** 2 == n\n",
		Test: "\n\ndef check(candidate):\n    assert candidate(0)\n    assert candidate(49)\n" +
			"    assert not candidate(50)\n    assert not candidate(-4)\n",
		EntryPoint: "is_square",
	},
	{
		TaskID: "Test/2",
		Prompt: "\ndef count_vowels(s):\n    \"\"\" The number of vowels (a, e, i, o, u, either case) in s.\n" +
			"    >>> count_vowels('Banana')\n    3\n    \"\"\"\n",
		CanonicalSolution: "    return sum(c in 'aeiouAEIOU' for c in s)\n",
		Test:              "\n\ndef check(candidate):\n    assert candidate('') == 0\n    assert candidate('Banana') == 3\n    assert candidate('xyz') == 0\n",
		EntryPoint:        "count_vowels",
	},
}

// TestHumanEvalParquet: rows written in the export's schema read back into nanochat's
// conversations.
func TestHumanEvalParquet(t *testing.T) {
	files := make([]HumanEvalFile, len(humanEvalRows))
	for i, r := range humanEvalRows {
		files[i] = HumanEvalFile(r)
	}
	path := filepath.Join(t.TempDir(), "test.parquet")
	if err := parquet.WriteFile(path, files); err != nil {
		t.Fatal(err)
	}
	if err := checkColumns(path, HumanEvalFile{}); err != nil {
		t.Fatalf("the fixture lacks the export's columns: %v", err)
	}
	task, err := ReadHumanEval(path)
	if err != nil || task.Len() != len(humanEvalRows) {
		t.Fatalf("read %v rows: %v", task, err)
	}
	if got := task.(Rows[HumanEvalRow]).Rows; !reflect.DeepEqual(got, humanEvalRows) {
		t.Errorf("rows read back\n%+v\nwant\n%+v", got, humanEvalRows)
	}
	ex, err := task.Example(1)
	if err != nil {
		t.Fatal(err)
	}
	r := humanEvalRows[1]
	want := []tokenizer.Message{{Role: "user", Text: r.Prompt}, {Role: "assistant", Text: r.Prompt + "\n" + r.CanonicalSolution}}
	if !reflect.DeepEqual(ex.Messages, want) || ex.Letters != nil {
		t.Errorf("conversation %+v, want %+v", ex.Messages, want)
	}
	if _, err := HumanEval(HumanEvalRow{TaskID: "Bad/0", Prompt: "def f():\n"}); err == nil || !strings.Contains(err.Error(), "Bad/0") {
		t.Errorf("a row without tests: %v", err)
	}
}

// TestHumanEvalExtraction: imports and code as nanochat's extract_imports and
// extract_program find them (the wants are what Python's re and str.strip return).
func TestHumanEvalExtraction(t *testing.T) {
	for _, c := range []struct{ prompt, want string }{
		{"from typing import List\n\n\ndef f(x: List[int]) -> int:\n    import os\n", "from typing import List"},
		{"# helpers\n\nimport math\n  import re  \n#x\nfrom collections import Counter\ndef g():\n    pass\nimport sys\n",
			"import math\nimport re\nfrom collections import Counter"},
		{"def h():\n    import math\n", ""},
		{"fromage = 1\nimport math\n", ""},
		{"\n\n", ""},
	} {
		if got := humanEvalImports(c.prompt); got != c.want {
			t.Errorf("imports of %q: %q, want %q", c.prompt, got, c.want)
		}
	}
	for _, c := range []struct{ completion, want string }{
		{"Here you go:\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1"},
		{"```\ndef g():\n    return 2\n```", "def g():\n    return 2"},
		{"```python   \t\n\n  x = 1\n```\n```python\ny = 2\n```", "x = 1"}, // the first block
		{"  def h():\n      return 3\n\n", "def h():\n      return 3"},     // no block: all of it
		{"```python\nunterminated = 1\n", "```python\nunterminated = 1"},
		{"```python\ninline = 1```", "```python\ninline = 1```"},
		{"```pythonic\nz = 3\n```", "```pythonic\nz = 3\n```"},
		{"```py\nw = 4\n```", "```py\nw = 4\n```"},
		{"\x1c\u3000 code()\u2028\x1f", "code()"}, // Python's white space, beyond Go's
		{"```python\n```\n", "```python\n```"},
		{"```python\n\n```", ""},
	} {
		if got := humanEvalCode(c.completion); got != c.want {
			t.Errorf("code of %q: %q, want %q", c.completion, got, c.want)
		}
	}
	r := humanEvalRows[1]
	got := HumanEvalProgram(r, "Sure:\n```python\ndef is_square(n):\n    return False\n```")
	want := "import math\n\ndef is_square(n):\n    return False\n\n" + r.Test + "\ncheck(is_square)"
	if got != want {
		t.Errorf("program\n%s\nwant\n%s", got, want)
	}
}

// TestCorrectHumanEval: each problem's own answer (the conversation's last message, the
// prompt and the canonical solution) passes; a function written in a code block without
// the prompt's imports passes; wrong, broken and endless ones fail.
func TestCorrectHumanEval(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skipf("skipped: python3 is not installed (%v), and HumanEval's judge runs the tests", err)
	}
	cfg := sandbox.Config{Timeout: 2 * time.Second}
	judge := func(r HumanEvalRow, completion string) bool {
		t.Helper()
		ok, _, err := CorrectHumanEval(context.Background(), r, completion, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, r := range humanEvalRows {
		ex, err := HumanEval(r)
		if err != nil {
			t.Fatal(err)
		}
		if !judge(*ex.HumanEval, ex.Messages[1].Text) {
			t.Errorf("%s: the canonical solution fails", r.TaskID)
		}
		if judge(*ex.HumanEval, "def nothing():\n    pass\n") {
			t.Errorf("%s: a reply without the function passes", r.TaskID)
		}
	}
	square := humanEvalRows[1]
	for _, c := range []struct {
		name, completion string
		want             bool
	}{
		{"a block without the import", "Here is the function:\n\n```python\ndef is_square(n):\n    return n >= 0 and math.isqrt(n) ** 2 == n\n```\n", true},
		{"wrong", "```python\ndef is_square(n):\n    return n % 2 == 1\n```", false},
		{"the body alone", square.CanonicalSolution, false},
		{"a syntax error", "def is_square(n)\n    return True\n", false},
		{"another name", "def square(n):\n    return True\n", false},
		{"endless", "def is_square(n):\n    while True:\n        pass\n", false},
	} {
		if got := judge(square, c.completion); got != c.want {
			t.Errorf("%s: judged %v, want %v", c.name, got, c.want)
		}
	}
	ok, res, err := CorrectHumanEval(context.Background(), square, "```python\ndef is_square(n):\n    return n % 2 == 1\n```", cfg)
	if ok || err != nil || res.Status != sandbox.Failed || !strings.Contains(res.Stderr, "AssertionError") {
		t.Errorf("a wrong answer: %v, %v, %v, stderr %q", ok, res.Status, err, res.Stderr)
	}
	if _, _, err := CorrectHumanEval(context.Background(), square, "", sandbox.Config{Python: "no-such-python3"}); err == nil ||
		!strings.Contains(err.Error(), "Test/1") {
		t.Errorf("without an interpreter: %v", err)
	}
}
