// Package sampler is nanochat's engine.py: generation with a trained model's KV-cached
// forward pass (graph.Cached), sampling with temperature, top-k and top-p, and the calculator tool.
package sampler

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gochat/graph"
	"gochat/tokenizer"
)

// Settings are one generation request's.
type Settings struct {
	MaxTokens   int     // tokens added to each row at most, forced ones included
	Temperature float64 // 0: always the most likely token
	TopK        int     // sample among the TopK most likely tokens (0: among all)
	TopP        float64 // of those, among the fewest most likely whose probabilities reach TopP (0 or 1: no cut)
	Seed        uint64  // of the request's random generator
	Rows        int     // continuations generated side by side (0 counts as 1)
}

// MaxRows is the most rows one generation runs side by side: each holds a KV cache.
const MaxRows = 1024

// Column is one step of a generation: a token for each row, -1 for a row that has ended.
// Forced marks the tokens a tool wrote (the calculator's output) rather than the model.
type Column struct {
	Tokens []int
	Forced []bool
}

// Generator generates with a model and its tokenizer: nanochat's Engine, without the bugs
// of its first release (the cache grows without corrupting itself; every row samples its
// own first token).
type Generator struct {
	Model   *graph.Cached
	Tok     *tokenizer.Tokenizer
	special map[string]int
}

// NewGenerator pairs a model with the tokenizer it was trained with.
func NewGenerator(m *graph.Cached, tok *tokenizer.Tokenizer) (*Generator, error) {
	if tok.VocabSize() != m.Config.VocabSize {
		return nil, fmt.Errorf("sampler: the tokenizer has %d tokens, the model %d", tok.VocabSize(), m.Config.VocabSize)
	}
	e := &Generator{Model: m, Tok: tok, special: map[string]int{}}
	for _, name := range tokenizer.SpecialTokens {
		id, err := tok.Special(name)
		if err != nil {
			return nil, err
		}
		e.special[name] = id
	}
	return e, nil
}

// row is the state of one row: whether it has ended, the tool call it is reading, and the
// tokens to force next.
type row struct {
	done     bool
	inPython bool
	expr     []int
	forced   []int
}

// Generate continues prompt in s.Rows rows and calls yield with each column of new tokens,
// until every row has ended (on <|assistant_end|> or <|bos|>, the column holding it
// included), MaxTokens columns are out, yield returns false or ctx is done (its error is
// returned). The prompt is computed once and its cache copied to every row; each row
// then samples on its own. A row that closes a <|python_start|>…<|python_end|> call has
// the calculator's result forced after it as <|output_start|>…<|output_end|>.
func (e *Generator) Generate(ctx context.Context, prompt []int, s Settings, yield func(Column) bool) error {
	m, V := e.Model, e.Model.Config.VocabSize
	R := max(s.Rows, 1)
	if len(prompt) == 0 {
		return fmt.Errorf("sampler: an empty prompt (start it with <|bos|>)")
	}
	if s.MaxTokens < 0 || s.Temperature < 0 || math.IsNaN(s.Temperature) || s.TopK < 0 {
		return fmt.Errorf("sampler: max tokens %d, temperature %g and top-k %d must not be negative", s.MaxTokens, s.Temperature, s.TopK)
	}
	if err := s.checkTopP(); err != nil {
		return err
	}
	if R > MaxRows {
		return fmt.Errorf("sampler: %d rows at once; at most %d", R, MaxRows)
	}
	if len(prompt) >= m.Config.RotaryLen() {
		return fmt.Errorf("sampler: a prompt of %d tokens leaves no room in the model's %d positions", len(prompt), m.Config.RotaryLen())
	}
	maxTokens := min(s.MaxTokens, m.Config.RotaryLen()-len(prompt))
	one := m.NewKVCache(1, len(prompt))
	defer one.Release() // a device's memory, kept for the next reply
	logits, err := m.Forward(one, prompt, len(prompt))
	if err != nil {
		return err
	}
	cache := m.NewKVCache(R, len(prompt)+maxTokens)
	defer cache.Release()
	if err := cache.Fill(one); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x9e3779b97f4a7c15))
	rows := make([]row, R)
	for n := 0; n < maxTokens; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		col := Column{Tokens: make([]int, R), Forced: make([]bool, R)}
		ended := 0
		for r := range rows {
			st := &rows[r]
			switch {
			case st.done:
				col.Tokens[r] = -1
			case len(st.forced) > 0:
				col.Tokens[r], st.forced = st.forced[0], st.forced[1:]
				col.Forced[r] = true
			default:
				at := r * V
				if n == 0 { // the prompt's logits, the same for every row
					at = 0
				}
				col.Tokens[r] = Sample(logits[at:at+V], s.Temperature, s.topK(logits[at:at+V]), rng)
			}
			if col.Tokens[r] >= 0 {
				e.advance(st, col.Tokens[r])
			}
			if st.done {
				ended++
			}
		}
		if !yield(col) || ended == R || n+1 == maxTokens {
			return nil
		}
		ids := make([]int, R)
		for r, t := range col.Tokens {
			ids[r] = max(t, 0) // an ended row's token is never read
		}
		if logits, err = m.Forward(cache, ids, 1); err != nil {
			return err
		}
	}
	return nil
}

// advance moves a row's state past token t.
func (e *Generator) advance(st *row, t int) {
	switch {
	case t == e.special["<|assistant_end|>"] || t == e.special["<|bos|>"]:
		st.done = true
	case t == e.special["<|python_start|>"]:
		st.inPython, st.expr = true, nil
	case t == e.special["<|python_end|>"] && st.inPython:
		st.inPython = false
		text, _ := e.Tok.Decode(st.expr)
		if result, ok := Calculate(string(text)); ok {
			st.forced = append(append([]int{e.special["<|output_start|>"]}, e.Tok.Encode(result)...), e.special["<|output_end|>"])
		}
	case st.inPython:
		st.expr = append(st.expr, t)
	}
}

// Continuations runs Generate and collects each row's tokens up to its end (the ending
// token left out), with a mask that is true where the model sampled the token.
func (e *Generator) Continuations(ctx context.Context, prompt []int, s Settings) ([][]int, [][]bool, error) {
	R := max(s.Rows, 1)
	tokens, sampled := make([][]int, R), make([][]bool, R)
	err := e.Generate(ctx, prompt, s, func(c Column) bool {
		for r, t := range c.Tokens {
			if t >= 0 && t != e.special["<|assistant_end|>"] && t != e.special["<|bos|>"] {
				tokens[r] = append(tokens[r], t)
				sampled[r] = append(sampled[r], !c.Forced[r])
			}
		}
		return true
	})
	return tokens, sampled, err
}

// Sample draws a token from logits: the most likely one at temperature 0, otherwise one
// from softmax(logits/temperature) restricted to the topK most likely (all when topK is 0
// or at least the vocabulary).
func Sample(logits []float32, temperature float64, topK int, rng *rand.Rand) int {
	if temperature == 0 {
		best := 0
		for i, x := range logits {
			if x > logits[best] {
				best = i
			}
		}
		return best
	}
	candidates := topIndices(logits, topK)
	p := make([]float64, len(candidates))
	hi := math.Inf(-1)
	for _, i := range candidates {
		hi = math.Max(hi, float64(logits[i]))
	}
	var sum float64
	for k, i := range candidates {
		p[k] = math.Exp((float64(logits[i]) - hi) / temperature)
		sum += p[k]
	}
	u := rng.Float64() * sum
	for k, w := range p {
		if u -= w; u < 0 {
			return candidates[k]
		}
	}
	return candidates[len(candidates)-1]
}

// topIndices returns the indices of the k largest logits (all of them when k is 0 or at
// least their number), largest first.
func topIndices(logits []float32, k int) []int {
	if k <= 0 || k >= len(logits) {
		all := make([]int, len(logits))
		for i := range all {
			all[i] = i
		}
		return all
	}
	h := &minHeap{logits: logits}
	for i := range logits {
		if h.Len() < k {
			heap.Push(h, i)
		} else if logits[i] > logits[h.idx[0]] {
			h.idx[0] = i
			heap.Fix(h, 0)
		}
	}
	out := make([]int, k)
	for n := k - 1; n >= 0; n-- {
		out[n] = heap.Pop(h).(int)
	}
	return out
}

// minHeap keeps indices ordered by their logits, smallest on top.
type minHeap struct {
	logits []float32
	idx    []int
}

func (h *minHeap) Len() int           { return len(h.idx) }
func (h *minHeap) Less(a, b int) bool { return h.logits[h.idx[a]] < h.logits[h.idx[b]] }
func (h *minHeap) Swap(a, b int)      { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *minHeap) Push(x any)         { h.idx = append(h.idx, x.(int)) }
func (h *minHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}
