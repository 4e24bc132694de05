package tasks

import (
	"fmt"

	"gochat/tokenizer"
)

// IgnoreIndex is a target that no loss counts (layers.IgnoreIndex, nanochat's -1).
const IgnoreIndex = -1

// SFT is nanochat's sft_data_generator: B conversations a batch, each rendered (ids and
// training mask), inputs its ids but the last and targets its ids but the first with the
// untrained ones (mask 0) ignored. nanochat pads each batch to its longest row with
// <|assistant_end|>; SFT pads every batch to T, the graph's fixed width, which computes
// the same loss: the padding is ignored, and causal attention keeps it from the tokens
// before it. Rank of World reads conversations rank, rank+World, …, over and over.
type SFT struct {
	Task        Task
	Tok         *tokenizer.Tokenizer
	B, T        int
	Rank, World int
	Next        int // the next conversation: its position resumes the loader
	Epoch       int // passes over the task completed
}

// Batch returns the next batch: B·T inputs and targets, row-major.
func (s *SFT) Batch() (inputs, targets []int, err error) {
	if s.Task.Len() <= s.Rank {
		return nil, nil, fmt.Errorf("sft: %d conversations for rank %d", s.Task.Len(), s.Rank)
	}
	pad, err := s.Tok.Special("<|assistant_end|>")
	if err != nil {
		return nil, nil, err
	}
	inputs, targets = make([]int, s.B*s.T), make([]int, s.B*s.T)
	for i := range inputs {
		inputs[i], targets[i] = pad, IgnoreIndex
	}
	for row := range s.B {
		if s.Next < s.Rank || s.Next >= s.Task.Len() {
			s.Next = s.Rank
		}
		ex, err := s.Task.Example(s.Next)
		if err != nil {
			return nil, nil, err
		}
		ids, mask, err := s.Tok.RenderConversation(ex.Conversation, min(tokenizer.DefaultMaxTokens, s.T+1))
		if err != nil {
			return nil, nil, fmt.Errorf("sft: conversation %d: %w", s.Next, err)
		}
		in, tg := inputs[row*s.T:], targets[row*s.T:]
		for i := range len(ids) - 1 {
			in[i] = ids[i]
			if mask[i+1] != 0 {
				tg[i] = ids[i+1]
			}
		}
		if s.Next += s.World; s.Next >= s.Task.Len() {
			s.Next, s.Epoch = s.Rank, s.Epoch+1
		}
	}
	return inputs, targets, nil
}

// Mid is nanochat's mid_data_generator: every conversation rendered and its ids (all of
// them: mid-training trains on every token) appended to one stream, cut into batches of
// B·T+1 tokens whose last is not reused, as base training's loader cuts documents. Rank of
// World reads conversations rank, rank+World, ….
type Mid struct {
	Task        Task
	Tok         *tokenizer.Tokenizer
	B, T        int
	Rank, World int
	// The position, which resumes the loader: the conversation the next batch starts in,
	// the token of it, and the passes over the task completed.
	Conv, Token, Epoch int
}

// Batch returns the next batch: B·T inputs and targets (the inputs shifted by one),
// row-major.
func (m *Mid) Batch() (inputs, targets []int, err error) {
	if m.Task.Len() <= m.Rank {
		return nil, nil, fmt.Errorf("mid: %d conversations for rank %d", m.Task.Len(), m.Rank)
	}
	if m.Conv < m.Rank || m.Conv >= m.Task.Len() {
		m.Conv, m.Token = m.Rank, 0
	}
	need := m.B*m.T + 1
	window := make([]int, 0, need)
	for len(window) < need {
		ex, err := m.Task.Example(m.Conv)
		if err != nil {
			return nil, nil, err
		}
		ids, _, err := m.Tok.RenderConversation(ex.Conversation, tokenizer.DefaultMaxTokens)
		if err != nil {
			return nil, nil, fmt.Errorf("mid: conversation %d: %w", m.Conv, err)
		}
		if m.Token > len(ids) {
			return nil, nil, fmt.Errorf("mid: position %d is past conversation %d's %d tokens", m.Token, m.Conv, len(ids))
		}
		take := min(need-len(window), len(ids)-m.Token)
		window = append(window, ids[m.Token:m.Token+take]...)
		if m.Token += take; m.Token == len(ids) {
			m.Token = 0
			if m.Conv += m.World; m.Conv >= m.Task.Len() {
				m.Conv, m.Epoch = m.Rank, m.Epoch+1
			}
		}
	}
	return window[:need-1], window[1:], nil
}
