package tasks

import (
	"fmt"

	"gochat/tokenizer"

	"github.com/parquet-go/parquet-go"
)

// The datasets' rows as HuggingFace's parquet export stores them (Arrow's schema: optional
// columns, lists as three-level LIST groups).
type (
	smolTalkFile struct {
		Messages []struct {
			Content string `parquet:"content,optional"`
			Role    string `parquet:"role,optional"`
		} `parquet:"messages,optional,list"`
	}
	mmluFile struct {
		Question string   `parquet:"question,optional"`
		Subject  string   `parquet:"subject,optional"`
		Choices  []string `parquet:"choices,optional,list"`
		Answer   int64    `parquet:"answer,optional"`
	}
	arcFile struct {
		ID       string `parquet:"id,optional"`
		Question string `parquet:"question,optional"`
		Choices  struct {
			Text  []string `parquet:"text,optional,list"`
			Label []string `parquet:"label,optional,list"`
		} `parquet:"choices,optional"`
		AnswerKey string `parquet:"answerKey,optional"`
	}
	gsm8kFile struct {
		Question string `parquet:"question,optional"`
		Answer   string `parquet:"answer,optional"`
	}
)

// readRows reads a parquet file's rows into F and turns each into a row of the dataset.
func readRows[F, R any](path string, row func(F) R) ([]R, error) {
	rows, err := parquet.ReadFile[F](path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make([]R, len(rows))
	for i, r := range rows {
		out[i] = row(r)
	}
	return out, nil
}

// ReadSmolTalk reads a parquet file of HuggingFaceTB/smol-smoltalk as a task.
func ReadSmolTalk(path string) (Task, error) {
	rows, err := readRows(path, func(f smolTalkFile) SmolTalkRow {
		var r SmolTalkRow
		for _, m := range f.Messages {
			r.Messages = append(r.Messages, tokenizer.Message{Role: m.Role, Text: m.Content})
		}
		return r
	})
	return Rows[SmolTalkRow]{Rows: rows, Convert: SmolTalk}, err
}

// ReadMMLU reads a parquet file of cais/mmlu as a task.
func ReadMMLU(path string) (Task, error) {
	rows, err := readRows(path, func(f mmluFile) MMLURow {
		return MMLURow{Question: f.Question, Subject: f.Subject, Choices: f.Choices, Answer: int(f.Answer)}
	})
	return Rows[MMLURow]{Rows: rows, Convert: MMLU}, err
}

// ReadARC reads a parquet file of allenai/ai2_arc as a task.
func ReadARC(path string) (Task, error) {
	rows, err := readRows(path, func(f arcFile) ARCRow {
		r := ARCRow{ID: f.ID, Question: f.Question, AnswerKey: f.AnswerKey}
		r.Choices.Text, r.Choices.Label = f.Choices.Text, f.Choices.Label
		return r
	})
	return Rows[ARCRow]{Rows: rows, Convert: ARC}, err
}

// ReadGSM8K reads a parquet file of openai/gsm8k as a task.
func ReadGSM8K(path string) (Task, error) {
	rows, err := readRows(path, func(f gsm8kFile) GSM8KRow { return GSM8KRow(f) })
	return Rows[GSM8KRow]{Rows: rows, Convert: GSM8K}, err
}
