package tasks

import (
	"fmt"

	"gochat/tokenizer"

	"github.com/parquet-go/parquet-go"
)

// The datasets' rows as HuggingFace's parquet export stores them (Arrow's schema: every
// column optional, lists as three-level LIST groups of optional elements). The readers read
// them; tests and tools write datasets in their published layout with them.
type (
	// SmolTalkFile is a row of HuggingFaceTB/smol-smoltalk.
	SmolTalkFile struct {
		Messages []SmolTalkMessage `parquet:"messages,optional,list" parquet-element:",optional"`
	}
	SmolTalkMessage struct {
		Content string `parquet:"content,optional"`
		Role    string `parquet:"role,optional"`
	}
	// MMLUFile is a row of cais/mmlu's configs but auxiliary_train.
	MMLUFile struct {
		Question string   `parquet:"question,optional"`
		Subject  string   `parquet:"subject,optional"`
		Choices  []string `parquet:"choices,optional,list" parquet-element:",optional"`
		Answer   int64    `parquet:"answer,optional"`
	}
	// MMLUAuxiliaryFile is a row of cais/mmlu's auxiliary_train config, whose export wraps
	// each row's columns in a struct column "train" (nanochat unwraps it with row['train']).
	MMLUAuxiliaryFile struct {
		Train MMLUFile `parquet:"train,optional"`
	}
	// ARCFile is a row of allenai/ai2_arc.
	ARCFile struct {
		ID        string     `parquet:"id,optional"`
		Question  string     `parquet:"question,optional"`
		Choices   ARCChoices `parquet:"choices,optional"`
		AnswerKey string     `parquet:"answerKey,optional"`
	}
	ARCChoices struct {
		Text  []string `parquet:"text,optional,list" parquet-element:",optional"`
		Label []string `parquet:"label,optional,list" parquet-element:",optional"`
	}
	// GSM8KFile is a row of openai/gsm8k.
	GSM8KFile struct {
		Question string `parquet:"question,optional"`
		Answer   string `parquet:"answer,optional"`
	}
	// HumanEvalFile is a row of openai/openai_humaneval.
	HumanEvalFile struct {
		TaskID            string `parquet:"task_id,optional"`
		Prompt            string `parquet:"prompt,optional"`
		CanonicalSolution string `parquet:"canonical_solution,optional"`
		Test              string `parquet:"test,optional"`
		EntryPoint        string `parquet:"entry_point,optional"`
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
	rows, err := readRows(path, func(f SmolTalkFile) SmolTalkRow {
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
	rows, err := readRows(path, MMLUFile.row)
	return Rows[MMLURow]{Rows: rows, Convert: MMLU}, err
}

func (f MMLUFile) row() MMLURow {
	return MMLURow{Question: f.Question, Subject: f.Subject, Choices: f.Choices, Answer: int(f.Answer)}
}

// ReadARC reads a parquet file of allenai/ai2_arc as a task.
func ReadARC(path string) (Task, error) {
	rows, err := readRows(path, func(f ARCFile) ARCRow {
		r := ARCRow{ID: f.ID, Question: f.Question, AnswerKey: f.AnswerKey}
		r.Choices.Text, r.Choices.Label = f.Choices.Text, f.Choices.Label
		return r
	})
	return Rows[ARCRow]{Rows: rows, Convert: ARC}, err
}

// ReadGSM8K reads a parquet file of openai/gsm8k as a task.
func ReadGSM8K(path string) (Task, error) {
	rows, err := readRows(path, func(f GSM8KFile) GSM8KRow { return GSM8KRow(f) })
	return Rows[GSM8KRow]{Rows: rows, Convert: GSM8K}, err
}
