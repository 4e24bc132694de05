package eval

import (
	"context"
	"fmt"

	"gochat/eval/sandbox"
	"gochat/graph"
	"gochat/sampler"
	"gochat/tasks"
	"gochat/tokenizer"
)

// This file is nanochat's chat evaluation (chat_eval.py): multiple-choice tasks scored by
// the letter the model finds most likely, open-ended ones by sampling replies and judging
// them, and ChatCORE over the five tasks.

// ChatTasks are chat_eval.py's tasks, in the order it evaluates them by default.
var ChatTasks = []string{"ARC-Easy", "ARC-Challenge", "MMLU", "GSM8K", "HumanEval"}

// ChatBaselines are the chat tasks' accuracies by chance, in percent: one letter of four for
// the multiple-choice tasks, nothing for the open-ended ones.
var ChatBaselines = map[string]float64{"ARC-Easy": 25, "ARC-Challenge": 25, "MMLU": 25, "GSM8K": 0, "HumanEval": 0}

// ChatCORE is the mean centred accuracy (Centered, with ChatBaselines) of the ChatTasks,
// from 0 at chance to 1 at every problem right. ok is false, and there is no ChatCORE,
// unless accuracy holds every one of them.
func ChatCORE(accuracy map[string]float64) (chatCORE float64, ok bool) {
	for _, name := range ChatTasks {
		acc, found := accuracy[name]
		if !found {
			return 0, false
		}
		chatCORE += Centered(acc, ChatBaselines[name])
	}
	return chatCORE / float64(len(ChatTasks)), true
}

// ChatProblem is the outcome of one problem of a task.
type ChatProblem struct {
	Index       int      `json:"index"`                 // the problem's position in the task
	Passed      bool     `json:"passed"`                // judged right
	Answer      string   `json:"answer,omitempty"`      // multiple choice: the right letter
	Choice      string   `json:"choice,omitempty"`      // multiple choice: the letter the model chose
	Completions []string `json:"completions,omitempty"` // open-ended: each sample's reply, decoded
}

// ChatResult is the evaluation of a task's problems, in the order they were evaluated.
type ChatResult struct {
	Passed   int
	Problems []ChatProblem
}

// Accuracy is the share of the problems passed (0 when there are none).
func (r ChatResult) Accuracy() float64 {
	if len(r.Problems) == 0 {
		return 0
	}
	return float64(r.Passed) / float64(len(r.Problems))
}

func (r *ChatResult) add(p ChatProblem) {
	r.Problems = append(r.Problems, p)
	if p.Passed {
		r.Passed++
	}
}

// firstProblems is how many of a task's n problems an evaluation cut to maxProblems
// covers (all when maxProblems ≤ 0).
func firstProblems(n, maxProblems int) int {
	if maxProblems > 0 {
		return min(n, maxProblems)
	}
	return n
}

// Categorical is chat_eval.py's evaluation of a multiple-choice task (MMLU, ARC): its
// first maxProblems problems (all when maxProblems ≤ 0), batchSize at a time. Each prompt
// is rendered for completion, the batch right-padded with <|bos|> and run through one
// forward pass; a problem's choice is its letter whose token has the largest logit at its
// prompt's last position (the first of equals), right when it is the answer. Causal
// attention keeps the padding from every position that is read. Each letter must encode
// to a single token. progress, when not nil, is called with the problems done after each
// batch. When ctx is done the problems finished so far are returned with its error.
func Categorical(ctx context.Context, m *graph.Cached, tok *tokenizer.Tokenizer, task tasks.Task, batchSize, maxProblems int, progress func(done, total int)) (ChatResult, error) {
	var res ChatResult
	if batchSize < 1 {
		return res, fmt.Errorf("categorical: a batch of %d problems", batchSize)
	}
	if tok.VocabSize() != m.Config.VocabSize {
		return res, fmt.Errorf("categorical: the tokenizer has %d tokens, the model %d", tok.VocabSize(), m.Config.VocabSize)
	}
	bos, err := tok.Special("<|bos|>")
	if err != nil {
		return res, err
	}
	letterIDs := map[string]int{}
	letterID := func(letter string) (int, error) {
		if id, ok := letterIDs[letter]; ok {
			return id, nil
		}
		ids := tok.Encode(letter)
		if len(ids) != 1 {
			return 0, fmt.Errorf("the answer letter %q encodes to %d tokens; each letter must be a single token", letter, len(ids))
		}
		letterIDs[letter] = ids[0]
		return ids[0], nil
	}
	n := firstProblems(task.Len(), maxProblems)
	for start := 0; start < n; start += batchSize {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		end := min(start+batchSize, n)
		examples, prompts := make([]tasks.Example, end-start), make([][]int, end-start)
		T := 0
		for b := range examples {
			ex, err := task.Example(start + b)
			if err != nil {
				return res, err
			}
			if len(ex.Letters) == 0 {
				return res, fmt.Errorf("categorical: problem %d has no answer letters (not a multiple-choice task)", start+b)
			}
			if prompts[b], err = tok.RenderForCompletion(ex.Conversation); err != nil {
				return res, fmt.Errorf("categorical: problem %d: %w", start+b, err)
			}
			examples[b], T = ex, max(T, len(prompts[b]))
		}
		ids := make([]int, len(prompts)*T)
		for i := range ids {
			ids[i] = bos
		}
		for b, p := range prompts {
			copy(ids[b*T:], p)
		}
		err := m.Score(ids, len(prompts), T, func(logits graph.Logits) error {
			for b, ex := range examples {
				at := b*T + len(prompts[b]) - 1
				last, err := logits.Rows(at, at+1)
				if err != nil {
					return err
				}
				focus := make([]float32, len(ex.Letters))
				for k, letter := range ex.Letters {
					id, err := letterID(letter)
					if err != nil {
						return fmt.Errorf("categorical: problem %d: %w", start+b, err)
					}
					focus[k] = last[id]
				}
				choice := ex.Letters[argmax(focus)]
				answer := ex.Messages[len(ex.Messages)-1].Text
				res.add(ChatProblem{Index: start + b, Passed: tasks.CorrectChoice(ex, choice), Answer: answer, Choice: choice})
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("categorical: problems %d to %d: %w", start, end-1, err)
		}
		if progress != nil {
			progress(end, n)
		}
	}
	return res, nil
}

// Judge says whether completion, a reply sampled for ex, answers it. An error is a
// failure to judge, which stops the evaluation, not a wrong answer; ctx stops a judge that
// runs a program.
type Judge func(ctx context.Context, ex tasks.Example, completion string) (bool, error)

// JudgeGSM8K is GSM8K's judge: the completion's final answer is the solution's.
func JudgeGSM8K(_ context.Context, ex tasks.Example, completion string) (bool, error) {
	return tasks.CorrectGSM8K(ex, completion), nil
}

// JudgeHumanEval is HumanEval's judge: the completion's program passes the problem's
// tests, run in the sandbox with nanochat's limits (tasks.CorrectHumanEval).
func JudgeHumanEval(ctx context.Context, ex tasks.Example, completion string) (bool, error) {
	if ex.HumanEval == nil {
		return false, fmt.Errorf("not a HumanEval problem")
	}
	passed, _, err := tasks.CorrectHumanEval(ctx, *ex.HumanEval, completion, sandbox.Config{})
	return passed, err
}

// Generative is chat_eval.py's evaluation of an open-ended task (GSM8K, HumanEval): its
// first maxProblems problems (all when maxProblems ≤ 0), one at a time. Each prompt is
// rendered for completion and continued by gen in s.Rows samples side by side (the
// calculator's results forced in, as in chat), sampled with seed s.Seed plus the
// problem's index; each sample is decoded up to its end token and judged, and the problem
// passes when any sample does (pass@s.Rows). progress, when not nil, is called with the
// problems done after each one. When ctx is done the problems finished so far are
// returned with its error.
func Generative(ctx context.Context, gen *sampler.Generator, task tasks.Task, judge Judge, s sampler.Settings, maxProblems int, progress func(done, total int)) (ChatResult, error) {
	var res ChatResult
	n, seed := firstProblems(task.Len(), maxProblems), s.Seed
	for i := range n {
		ex, err := task.Example(i)
		if err != nil {
			return res, err
		}
		prompt, err := gen.Tok.RenderForCompletion(ex.Conversation)
		if err != nil {
			return res, fmt.Errorf("generative: problem %d: %w", i, err)
		}
		s.Seed = seed + uint64(i)
		samples, _, err := gen.Continuations(ctx, prompt, s)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err != nil {
			return res, fmt.Errorf("generative: problem %d: %w", i, err)
		}
		p := ChatProblem{Index: i}
		for _, tokens := range samples {
			text, err := gen.Tok.Decode(tokens)
			if err != nil {
				return res, fmt.Errorf("generative: problem %d: %w", i, err)
			}
			right, err := judge(ctx, ex, string(text))
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if err != nil {
				return res, fmt.Errorf("generative: judging problem %d: %w", i, err)
			}
			p.Passed = p.Passed || right
			p.Completions = append(p.Completions, string(text))
		}
		res.add(p)
		if progress != nil {
			progress(i+1, n)
		}
	}
	return res, nil
}
