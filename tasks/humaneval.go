package tasks

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"gochat/eval/sandbox"
	"gochat/tokenizer"
)

// HumanEvalRow is a row of openai/openai_humaneval: a Python function's signature and
// docstring (the prompt), the body that completes it, the tests of a check(candidate)
// function, and the name of the function they check.
type HumanEvalRow struct {
	TaskID            string `json:"task_id"`
	Prompt            string `json:"prompt"`
	CanonicalSolution string `json:"canonical_solution"`
	Test              string `json:"test"`
	EntryPoint        string `json:"entry_point"`
}

// ReadHumanEval reads a parquet file of openai/openai_humaneval as a task (a Generative
// one: the model writes the function, and CorrectHumanEval runs its tests).
func ReadHumanEval(path string) (Task, error) {
	rows, err := readRows(path, func(f HumanEvalFile) HumanEvalRow { return HumanEvalRow(f) })
	return Rows[HumanEvalRow]{Rows: rows, Convert: HumanEval}, err
}

// HumanEval is nanochat's HumanEval conversation: the prompt asked, and answered by the
// prompt, a newline and the canonical solution, the whole function.
func HumanEval(row HumanEvalRow) (Example, error) {
	for _, field := range []struct{ name, value string }{
		{"prompt", row.Prompt}, {"test", row.Test}, {"entry_point", row.EntryPoint},
	} {
		if field.value == "" {
			return Example{}, fmt.Errorf("humaneval %s: the row has no %s", row.TaskID, field.name)
		}
	}
	return Example{Conversation: tokenizer.Conversation{Messages: []tokenizer.Message{
		{Role: "user", Text: row.Prompt},
		{Role: "assistant", Text: row.Prompt + "\n" + row.CanonicalSolution},
	}}, HumanEval: &row}, nil
}

// HumanEvalProgram is the program nanochat runs to judge a completion: the import lines
// that open the prompt (a completion often leaves them out), the completion's code, the
// row's tests and the call of check on the entry point.
func HumanEvalProgram(row HumanEvalRow, completion string) string {
	return humanEvalImports(row.Prompt) + "\n\n" + humanEvalCode(completion) + "\n\n" + row.Test + "\n" +
		"check(" + row.EntryPoint + ")"
}

// CorrectHumanEval says whether completion passes the row's tests, run in the sandbox
// with cfg (its zero value is nanochat's 5 s and 256 MiB), with what the run did. The
// error is the sandbox's failure to run the program, not a wrong answer.
func CorrectHumanEval(ctx context.Context, row HumanEvalRow, completion string, cfg sandbox.Config) (bool, sandbox.Result, error) {
	res, err := sandbox.Run(ctx, HumanEvalProgram(row, completion), cfg)
	if err != nil {
		return false, res, fmt.Errorf("humaneval %s: %w", row.TaskID, err)
	}
	return res.Status == sandbox.Passed, res, nil
}

// humanEvalImports is nanochat's extract_imports: the prompt's lines, stripped, that start
// with "import " or "from ", up to the first line that is neither blank, a comment nor an
// import.
func humanEvalImports(prompt string) string {
	var imports []string
	for _, line := range strings.Split(prompt, "\n") {
		stripped := pyStrip(line)
		if strings.HasPrefix(stripped, "import ") || strings.HasPrefix(stripped, "from ") {
			imports = append(imports, stripped)
		} else if stripped != "" && !strings.HasPrefix(stripped, "#") {
			break
		}
	}
	return strings.Join(imports, "\n")
}

// pySpace is Python's \s in a str pattern (the characters of str.isspace), which Go's \s
// (ASCII, without \v) is not.
const pySpace = `[\t\n\v\f\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]`

// codeBlock is nanochat's markdown code block, ```python or ``` and a line break, the code,
// a line break and ```: r'```(?:python)?\s*\n(.*?)\n```' with re.DOTALL.
var codeBlock = regexp.MustCompile("(?s)```(?:python)?" + pySpace + "*\n(.*?)\n```")

// humanEvalCode is nanochat's extract_program: the first code block of the completion, or
// else the whole completion, stripped.
func humanEvalCode(completion string) string {
	if m := codeBlock.FindStringSubmatch(completion); m != nil {
		return pyStrip(m[1])
	}
	return pyStrip(completion)
}

// pyStrip is Python's str.strip(): Go's white space and the four information separators
// \x1c–\x1f, which Python counts as white space too.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) })
}
