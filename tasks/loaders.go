package tasks

import (
	"fmt"

	"gochat/tokenizer"
)

// IgnoreIndex is a target that no loss counts (layers.IgnoreIndex, nanochat's -1).
const IgnoreIndex = -1

// Position is where a conversation loader stands, which resumes it: the conversation its
// next batch starts in, the token of that conversation (Mid's stream), and the passes over
// the task completed.
type Position struct {
	Conv  int `json:"conversation"`
	Token int `json:"token,omitempty"`
	Epoch int `json:"epoch"`
}

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
	Position
	Filled    int // positions of the batches so far that hold a conversation's tokens, not padding
	Truncated int // conversations so far cut to fit a row (nanochat cuts them to 2,048 tokens)
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
		if s.Conv < s.Rank || s.Conv >= s.Task.Len() {
			s.Conv = s.Rank
		}
		ex, err := s.Task.Example(s.Conv)
		if err != nil {
			return nil, nil, err
		}
		limit := min(tokenizer.DefaultMaxTokens, s.T+1)
		ids, mask, err := s.Tok.RenderConversation(ex.Conversation, limit+1)
		if err != nil {
			return nil, nil, fmt.Errorf("sft: conversation %d: %w", s.Conv, err)
		}
		if len(ids) > limit {
			ids, mask = ids[:limit], mask[:limit]
			s.Truncated++
		}
		in, tg := inputs[row*s.T:], targets[row*s.T:]
		s.Filled += len(ids) - 1
		for i := range len(ids) - 1 {
			in[i] = ids[i]
			if mask[i+1] != 0 {
				tg[i] = ids[i+1]
			}
		}
		if s.Conv += s.World; s.Conv >= s.Task.Len() {
			s.Conv, s.Epoch = s.Rank, s.Epoch+1
		}
	}
	return inputs, targets, nil
}

// Mid is nanochat's mid_data_generator: every conversation rendered and its ids (all of
// them: nanochat's mid-training trains on every token) appended to one stream, cut into
// batches of B·T+1 tokens whose last is not reused, as base training's loader cuts
// documents. Masked trains only on what SFT trains on (the rendering's mask). Rank of
// World reads conversations rank, rank+World, ….
type Mid struct {
	Task        Task
	Tok         *tokenizer.Tokenizer
	B, T        int
	Rank, World int
	Masked      bool
	Position
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
	window, trained := make([]int, 0, need), make([]int8, 0, need)
	for len(window) < need {
		ex, err := m.Task.Example(m.Conv)
		if err != nil {
			return nil, nil, err
		}
		ids, mask, err := m.Tok.RenderConversation(ex.Conversation, tokenizer.DefaultMaxTokens)
		if err != nil {
			return nil, nil, fmt.Errorf("mid: conversation %d: %w", m.Conv, err)
		}
		if m.Token > len(ids) {
			return nil, nil, fmt.Errorf("mid: position %d is past conversation %d's %d tokens", m.Token, m.Conv, len(ids))
		}
		take := min(need-len(window), len(ids)-m.Token)
		window = append(window, ids[m.Token:m.Token+take]...)
		trained = append(trained, mask[m.Token:m.Token+take]...)
		if m.Token += take; m.Token == len(ids) {
			m.Token = 0
			if m.Conv += m.World; m.Conv >= m.Task.Len() {
				m.Conv, m.Epoch = m.Rank, m.Epoch+1
			}
		}
	}
	targets = window[1:]
	if m.Masked {
		targets = append([]int(nil), targets...) // the inputs are the same window
		for i := range targets {
			if trained[i+1] == 0 {
				targets[i] = IgnoreIndex
			}
		}
	}
	return window[:need-1], targets, nil
}

// Done says that the stream has reached the task's last conversation: nanochat's
// mid-training ends at the step whose next batch took tokens of it (or went past it).
func (m *Mid) Done() bool {
	return m.Epoch > 0 || m.Token > 0 && m.Conv+m.World >= m.Task.Len()
}

// Progress is the share of the task's first pass the stream has reached, nanochat's
// approx_progress: the conversations begun over the task's, 1 once it has gone round.
func (m *Mid) Progress() float64 {
	begun := m.Conv
	if m.Token > 0 {
		begun += m.World
	}
	if m.Epoch > 0 {
		return 1
	}
	return float64(min(begun, m.Task.Len())) / float64(m.Task.Len())
}
