package sampler

import (
	"fmt"

	"gochat/graph"
)

// completeUncached continues each prompt greedily (the most likely token each time) by up
// to maxTokens tokens, stopping a row early at one of the stop ids, and returns the prompts
// with their continuations. It runs the whole sequence through m, an Infer graph with at
// least len(prompts) rows, for every token: no cache, the reference the cached engine is
// checked against. A row ends too when it fills m's sequence length.
func completeUncached(m *graph.Model, prompts [][]int, maxTokens int, stop ...int) ([][]int, error) {
	if m.Mode != graph.Infer {
		return nil, fmt.Errorf("sampler: Complete needs an Infer graph")
	}
	if len(prompts) > m.Batch {
		return nil, fmt.Errorf("sampler: %d prompts for a graph of %d rows", len(prompts), m.Batch)
	}
	T, V := m.SeqLen, m.Config.VocabSize
	rows := make([][]int, len(prompts))
	done := make([]bool, len(prompts))
	for r, p := range prompts {
		if len(p) == 0 || len(p) > T {
			return nil, fmt.Errorf("sampler: prompt %d has %d tokens; want 1 to %d", r, len(p), T)
		}
		rows[r] = append([]int(nil), p...)
	}
	ids := make([]int, m.Batch*T) // positions past a row's end hold 0: causal attention never sees them
	for range maxTokens {
		active := false
		for r, row := range rows {
			if !done[r] && len(row) < T {
				active = true
			}
			copy(ids[r*T:], row)
		}
		if !active {
			break
		}
		if err := m.Run(ids, nil); err != nil {
			return nil, err
		}
		logits := m.Output()
		for r, row := range rows {
			if done[r] || len(row) == T {
				continue
			}
			last := logits[(r*T+len(row)-1)*V : (r*T+len(row))*V]
			best := 0
			for v, x := range last {
				if x > last[best] {
					best = v
				}
			}
			rows[r] = append(row, best)
			for _, s := range stop {
				done[r] = done[r] || best == s
			}
		}
	}
	return rows, nil
}
