package tasks

import (
	"fmt"
	"regexp"
	"strings"

	"gochat/tokenizer"
)

// SmolTalkRow is a row of HuggingFaceTB/smol-smoltalk.
type SmolTalkRow struct {
	Messages []tokenizer.Message `json:"messages"`
}

// SmolTalk is the row's conversation as it is, once checked as nanochat checks it: an
// optional system message, then at least two messages alternating user and assistant, all
// plain text.
func SmolTalk(row SmolTalkRow) (Example, error) {
	msgs := row.Messages
	if len(msgs) == 0 {
		return Example{}, fmt.Errorf("smoltalk: a row without messages")
	}
	rest := msgs
	if msgs[0].Role == "system" {
		rest = msgs[1:]
	}
	if len(rest) < 2 {
		return Example{}, fmt.Errorf("smoltalk: %d messages after the system one; want 2 at least", len(rest))
	}
	for i, m := range rest {
		want := [2]string{"user", "assistant"}[i%2]
		if m.Role != want || m.Parts != nil {
			return Example{}, fmt.Errorf("smoltalk: message %d is a %q with %d parts; want %q text", i, m.Role, len(m.Parts), want)
		}
	}
	return Example{Conversation: tokenizer.Conversation{Messages: msgs}}, nil
}

// MultipleChoice is nanochat's render_mc: the question, each choice followed by "=" and its
// letter (no space: the reply is the bare letter, the same token), and the instruction.
func MultipleChoice(question string, letters, choices []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Multiple Choice question: %s\n", question)
	for i, choice := range choices {
		fmt.Fprintf(&b, "- %s=%s\n", choice, letters[i])
	}
	b.WriteString("\nRespond only with the letter of the correct answer.")
	return b.String()
}

// MMLURow is a row of cais/mmlu.
type MMLURow struct {
	Question string   `json:"question"`
	Subject  string   `json:"subject"`
	Choices  []string `json:"choices"`
	Answer   int      `json:"answer"`
}

// mmluLetters are MMLU's answer letters.
var mmluLetters = []string{"A", "B", "C", "D"}

// MMLU is a four-choice question answered by its letter.
func MMLU(row MMLURow) (Example, error) {
	if len(row.Choices) != 4 || row.Answer < 0 || row.Answer >= 4 {
		return Example{}, fmt.Errorf("mmlu: %d choices and answer %d; want 4 and 0..3", len(row.Choices), row.Answer)
	}
	return Example{Conversation: question(MultipleChoice(row.Question, mmluLetters, row.Choices), mmluLetters[row.Answer]),
		Letters: mmluLetters, Subject: row.Subject}, nil
}

// ARCRow is a row of allenai/ai2_arc (ARC-Easy and ARC-Challenge).
type ARCRow struct {
	ID       string `json:"id"`
	Question string `json:"question"`
	Choices  struct {
		Text  []string `json:"text"`
		Label []string `json:"label"`
	} `json:"choices"`
	AnswerKey string `json:"answerKey"`
}

// ARC is a question with its own labels (letters, or digits in some rows) answered by one.
func ARC(row ARCRow) (Example, error) {
	labels := row.Choices.Label
	if len(labels) != len(row.Choices.Text) || !contains(labels, row.AnswerKey) {
		return Example{}, fmt.Errorf("arc %s: %d labels for %d choices, answer %q", row.ID, len(labels), len(row.Choices.Text), row.AnswerKey)
	}
	return Example{Conversation: question(MultipleChoice(row.Question, labels, row.Choices.Text), row.AnswerKey), Letters: labels}, nil
}

// GSM8KRow is a row of openai/gsm8k.
type GSM8KRow struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

// calculatorSpan is GSM8K's <<expr=result>> annotation.
var calculatorSpan = regexp.MustCompile(`<<[^>]+>>`)

// GSM8K turns each <<expr=result>> span of the solution into a calculator call, its expr
// as a python part and its result (empty without "=") as the python_output part, the text
// around them as text parts, empty ones included, as nanochat's re.split makes them.
func GSM8K(row GSM8KRow) (Example, error) {
	var parts []tokenizer.Part
	at := 0
	for _, span := range calculatorSpan.FindAllStringIndex(row.Answer, -1) {
		parts = append(parts, tokenizer.Part{Type: "text", Text: row.Answer[at:span[0]]})
		inner := row.Answer[span[0]+2 : span[1]-2]
		expr, result := inner, ""
		if i := strings.LastIndex(inner, "="); i >= 0 {
			expr, result = inner[:i], inner[i+1:]
		}
		parts = append(parts, tokenizer.Part{Type: "python", Text: expr}, tokenizer.Part{Type: "python_output", Text: result})
		at = span[1]
	}
	parts = append(parts, tokenizer.Part{Type: "text", Text: row.Answer[at:]})
	return Example{Conversation: tokenizer.Conversation{Messages: []tokenizer.Message{
		{Role: "user", Text: row.Question}, {Role: "assistant", Parts: parts}}}}, nil
}

// gsm8kAnswer is the final answer line, as OpenAI's grader reads it.
var gsm8kAnswer = regexp.MustCompile(`#### (\-?[0-9\.\,]+)`)

// GSM8KAnswer is the number after the first "#### " of text, its commas dropped, and
// whether there is one.
func GSM8KAnswer(text string) (string, bool) {
	m := gsm8kAnswer.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return strings.ReplaceAll(strings.TrimSpace(m[1]), ",", ""), true
}

// CorrectGSM8K says whether reply ends on the example's answer: nanochat's evaluate and
// RL reward (1 or 0).
func CorrectGSM8K(ex Example, reply string) bool {
	last := ex.Messages[len(ex.Messages)-1]
	want, ok := GSM8KAnswer(last.Parts[len(last.Parts)-1].Text)
	got, ok2 := GSM8KAnswer(reply)
	return ok == ok2 && want == got
}

// CorrectChoice says whether a multiple-choice reply is the example's answer letter.
func CorrectChoice(ex Example, reply string) bool {
	return reply == ex.Messages[len(ex.Messages)-1].Text
}

// question is a user question and the assistant's answer.
func question(q, answer string) tokenizer.Conversation {
	return tokenizer.Conversation{Messages: []tokenizer.Message{{Role: "user", Text: q}, {Role: "assistant", Text: answer}}}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
