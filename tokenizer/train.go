package tokenizer

import (
	"container/heap"
	"fmt"
	"runtime"
	"sync"
	"unicode/utf8"
)

// TrainOptions are tok_train's knobs: the vocabulary size counts the 256 bytes, the merges
// and the special tokens; DocCap (characters) caps each document and MaxChars (characters)
// the whole input; 0 means no cap.
type TrainOptions struct {
	VocabSize, DocCap, MaxChars int
	// Progress, when set, is called after counting (done 0) and then as merges are made,
	// about a hundred times in all, with the merges done and the merges asked for.
	Progress func(done, total int)
}

// Train learns a byte-level BPE as rustbpe does: count the split chunks of the documents,
// then repeatedly merge the most frequent adjacent pair (ties: the smaller pair), updating
// the pair counts incrementally. It stops early if no pair is left.
func Train(docs []string, opt TrainOptions) (*Tokenizer, error) {
	c := NewCounter(opt)
	c.Add(docs)
	return c.Train()
}

// Counter counts the split chunks of documents given to it a batch at a time, within
// DocCap and MaxChars, so that a tokenizer can be trained on more text than memory holds:
// only the distinct chunks and their counts are kept.
type Counter struct {
	opt    TrainOptions
	chars  int
	counts map[string]int64
}

// NewCounter starts counting for a tokenizer trained with opt.
func NewCounter(opt TrainOptions) *Counter { return &Counter{opt: opt, counts: map[string]int64{}} }

// Add counts a batch of documents and says whether more are wanted (false once MaxChars
// characters have been counted).
func (c *Counter) Add(docs []string) bool {
	docs = c.capDocs(docs)
	workers := runtime.GOMAXPROCS(0)
	parts := make([]map[string]int64, workers)
	var wg sync.WaitGroup
	for w := range parts {
		parts[w] = map[string]int64{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(docs); i += workers {
				for _, chunk := range Split(docs[i]) {
					parts[w][chunk]++
				}
			}
		}()
	}
	wg.Wait()
	for _, m := range parts {
		for chunk, n := range m {
			c.counts[chunk] += n
		}
	}
	return c.opt.MaxChars <= 0 || c.chars < c.opt.MaxChars
}

// Train learns the merges from the counts.
func (c *Counter) Train() (*Tokenizer, error) {
	opt := c.opt
	merges := opt.VocabSize - 256 - len(SpecialTokens)
	if merges < 0 {
		return nil, fmt.Errorf("tokenizer: vocabulary size %d is below the 256 bytes and %d special tokens", opt.VocabSize, len(SpecialTokens))
	}
	words, counts := make([][]int, 0, len(c.counts)), make([]int64, 0, len(c.counts))
	for chunk, n := range c.counts {
		ids := make([]int, len(chunk))
		for i := 0; i < len(chunk); i++ {
			ids[i] = int(chunk[i])
		}
		words, counts = append(words, ids), append(counts, n)
	}
	tokens := ByteTokens()
	p := newPairs(words, counts)
	report := func() {
		if opt.Progress != nil && (len(p.merges)%max(1, merges/100) == 0 || len(p.merges) == merges) {
			opt.Progress(len(p.merges), merges)
		}
	}
	report()
	for len(tokens) < 256+merges {
		pr, ok := p.best()
		if !ok {
			break
		}
		id := len(tokens)
		tokens = append(tokens, append(append([]byte(nil), tokens[pr[0]]...), tokens[pr[1]]...))
		p.merge(pr, id)
		p.merges = append(p.merges, pr)
		report()
	}
	t, err := New(tokens)
	if err != nil {
		return nil, err
	}
	t.merges = p.merges
	return t, nil
}

// capDocs applies DocCap and what is left of MaxChars (in characters) to a batch.
func (c *Counter) capDocs(docs []string) []string {
	var out []string
	for _, d := range docs {
		if c.opt.MaxChars > 0 && c.chars >= c.opt.MaxChars {
			break
		}
		if c.opt.DocCap > 0 && utf8.RuneCountInString(d) > c.opt.DocCap {
			d = prefixChars(d, c.opt.DocCap)
		}
		n := utf8.RuneCountInString(d)
		if c.opt.MaxChars > 0 && c.chars+n > c.opt.MaxChars {
			d, n = prefixChars(d, c.opt.MaxChars-c.chars), c.opt.MaxChars-c.chars
		}
		out = append(out, d)
		c.chars += n
	}
	return out
}

// prefixChars is the first n characters of s.
func prefixChars(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// pairs keeps, for every adjacent pair of ids, its count over all words (weighted by their
// counts) and the words it occurs in, with a max-heap that may hold stale entries.
type pairs struct {
	merges [][2]int // made so far: merge i made token 256+i
	words  [][]int
	counts []int64
	count  map[[2]int]int64
	where  map[[2]int]map[int]struct{}
	h      pairHeap
}

func newPairs(words [][]int, counts []int64) *pairs {
	p := &pairs{words: words, counts: counts, count: map[[2]int]int64{}, where: map[[2]int]map[int]struct{}{}}
	for w, ids := range words {
		for j := 0; j+1 < len(ids); j++ {
			p.add([2]int{ids[j], ids[j+1]}, w, counts[w])
		}
	}
	for pr, n := range p.count {
		p.h = append(p.h, pairCount{pr, n})
	}
	heap.Init(&p.h)
	return p
}

func (p *pairs) add(pr [2]int, w int, n int64) {
	p.count[pr] += n
	p.index(pr, w)
}

// index records that word w holds pair pr.
func (p *pairs) index(pr [2]int, w int) {
	if p.where[pr] == nil {
		p.where[pr] = map[int]struct{}{}
	}
	p.where[pr][w] = struct{}{}
}

// best pops the most frequent pair, refreshing stale heap entries on the way.
func (p *pairs) best() ([2]int, bool) {
	for p.h.Len() > 0 {
		top := heap.Pop(&p.h).(pairCount)
		if n := p.count[top.pair]; n != top.n {
			if n > 0 {
				heap.Push(&p.h, pairCount{top.pair, n})
			}
			continue
		}
		if top.n <= 0 {
			return [2]int{}, false
		}
		return top.pair, true
	}
	return [2]int{}, false
}

// merge replaces every occurrence of pr by id (left to right, not overlapping) in the words
// that hold it, as rustbpe does: each occurrence (a, b) between prev and next takes
// (prev, a), (a, b) and (b, next) out of the counts and puts (prev, id) and (id, next) in,
// where prev is already the merged output, which makes overlapping occurrences come out
// right. Only pairs whose count grew go on the heap; stale entries are refreshed when popped.
func (p *pairs) merge(pr [2]int, id int) {
	delta := map[[2]int]int64{}
	for w := range p.where[pr] {
		old, n := p.words[w], p.counts[w]
		merged := make([]int, 0, len(old))
		for j := 0; j < len(old); j++ {
			if j+1 >= len(old) || old[j] != pr[0] || old[j+1] != pr[1] {
				merged = append(merged, old[j])
				continue
			}
			delta[pr] -= n
			if len(merged) > 0 {
				prev := merged[len(merged)-1]
				delta[[2]int{prev, pr[0]}] -= n
				delta[[2]int{prev, id}] += n
				p.index([2]int{prev, id}, w)
			}
			if j+2 < len(old) {
				next := old[j+2]
				delta[[2]int{pr[1], next}] -= n
				delta[[2]int{id, next}] += n
				p.index([2]int{id, next}, w)
			}
			merged = append(merged, id)
			j++
		}
		p.words[w] = merged
	}
	delete(p.where, pr)
	for c, d := range delta {
		p.count[c] += d
		if d > 0 {
			heap.Push(&p.h, pairCount{c, p.count[c]})
		}
	}
}

type pairCount struct {
	pair [2]int
	n    int64
}

// pairHeap orders by count, then by the smaller pair.
type pairHeap []pairCount

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].n != h[j].n {
		return h[i].n > h[j].n
	}
	if h[i].pair[0] != h[j].pair[0] {
		return h[i].pair[0] < h[j].pair[0]
	}
	return h[i].pair[1] < h[j].pair[1]
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairCount)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
