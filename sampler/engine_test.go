package sampler

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/scripted"
	"gochat/tokenizer"
)

func newModel(t *testing.T, cfg graph.Config, w graph.Weights) *graph.Cached {
	m, err := graph.NewCached(cfg, w, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func relErr(got, want []float32) float64 {
	var d, n float64
	for i := range want {
		d += math.Pow(float64(got[i]-want[i]), 2)
		n += math.Pow(float64(want[i]), 2)
	}
	return math.Sqrt(d / n)
}

// cachedTol bounds ‖cached − uncached‖/‖uncached‖ per position: the same float32 kernels
// add up in other orders when the keys come from the cache in pieces.
const cachedTol = 1e-5

// TestCachedEqualsUncached: a prefill of 1000 tokens and then 100 more one at a time (the
// cache grows past its first 1024 positions) give the logits of the inference graph over
// the whole sequence, for a row of its own and for two rows filled from it that go on
// with different tokens.
func TestCachedEqualsUncached(t *testing.T) {
	cfg := graph.Config{SequenceLen: 128, VocabSize: 60, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 32}
	w := randomWeightsOf(cfg)
	r := rand.New(rand.NewPCG(1, 2))
	const P, N = 1000, 1100
	seqs := [2][]int{make([]int, N), make([]int, N)}
	for i := range N {
		seqs[0][i] = r.IntN(cfg.VocabSize)
		seqs[1][i] = seqs[0][i]
		if i >= P {
			seqs[1][i] = r.IntN(cfg.VocabSize)
		}
	}
	g := inferOf(t, cfg, w, 2, N)
	if err := g.Run(append(slices.Clone(seqs[0]), seqs[1]...), nil); err != nil {
		t.Fatal(err)
	}
	want := g.Output()
	V := cfg.VocabSize
	wantAt := func(b, i int) []float32 { return want[(b*N+i)*V : (b*N+i+1)*V] }

	m := newModel(t, cfg, w)
	one := m.NewKVCache(1, P)
	got, err := m.ForwardAll(one, seqs[0][:P], P)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(got, want[:P*V]); e > cachedTol {
		t.Fatalf("prefill: relative error %.3g", e)
	}
	two := m.NewKVCache(2, 0)
	if err := two.Fill(one); err != nil {
		t.Fatal(err)
	}
	for i := P; i < N; i++ {
		got, err := m.Forward(one, seqs[0][i:i+1], 1)
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(got, wantAt(0, i)); e > cachedTol {
			t.Fatalf("one row, position %d: relative error %.3g", i, e)
		}
		got, err = m.Forward(two, []int{seqs[0][i], seqs[1][i]}, 1)
		if err != nil {
			t.Fatal(err)
		}
		for b := range 2 {
			if e := relErr(got[b*V:(b+1)*V], wantAt(b, i)); e > cachedTol {
				t.Fatalf("row %d of two, position %d: relative error %.3g", b, i, e)
			}
		}
	}
	if one.Capacity() < N || one.Capacity()%graph.KVGrowth != 0 {
		t.Errorf("capacity %d after %d positions", one.Capacity(), N)
	}
}

// TestGreedyMatchesUncached: the engine at temperature 0 writes what the uncached
// reference writes.
func TestGreedyMatchesUncached(t *testing.T) {
	tok := scripted.Tokenizer()
	cfg := graph.Config{SequenceLen: 40, VocabSize: tok.VocabSize(), NLayer: 2, NHead: 2, NKVHead: 1, NEmbd: 32}
	w := randomWeightsOf(cfg)
	eng, err := NewGenerator(newModel(t, cfg, w), tok)
	if err != nil {
		t.Fatal(err)
	}
	prompt := append([]int{256}, tok.Encode("The capital of")...)
	got, _, err := eng.Continuations(context.Background(), prompt, Settings{MaxTokens: 12})
	if err != nil {
		t.Fatal(err)
	}
	bos, _ := tok.Special("<|bos|>")
	end, _ := tok.Special("<|assistant_end|>")
	want, err := completeUncached(inferOf(t, cfg, w, 1, cfg.SequenceLen), [][]int{prompt}, 12, bos, end)
	if err != nil {
		t.Fatal(err)
	}
	wantTokens := want[0][len(prompt):]
	if n := len(wantTokens); n > 0 && (wantTokens[n-1] == bos || wantTokens[n-1] == end) {
		wantTokens = wantTokens[:n-1]
	}
	if !slices.Equal(got[0], wantTokens) {
		t.Fatalf("cached greedy %v, uncached %v", got[0], wantTokens)
	}
}

// TestSeedsAndRows: a request is reproducible from its seed; another seed, or another row
// of the same request, samples differently from the first token on.
func TestSeedsAndRows(t *testing.T) {
	tok := scripted.Tokenizer()
	cfg := graph.Config{SequenceLen: 40, VocabSize: tok.VocabSize(), NLayer: 1, NHead: 2, NKVHead: 2, NEmbd: 32}
	eng, err := NewGenerator(newModel(t, cfg, randomWeightsOf(cfg)), tok)
	if err != nil {
		t.Fatal(err)
	}
	run := func(seed uint64) [][]int {
		var first []int
		rows, _, err := eng.Continuations(context.Background(), []int{256, 'a'}, Settings{MaxTokens: 10, Temperature: 1.5, Rows: 4, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			first = append(first, r[0])
		}
		return append(rows, first)
	}
	a, b, c := run(7), run(7), run(8)
	for r := range a {
		if !slices.Equal(a[r], b[r]) {
			t.Fatalf("seed 7 twice: row %d differs", r)
		}
	}
	if slices.EqualFunc(a[:4], c[:4], slices.Equal) {
		t.Error("seeds 7 and 8 gave the same rows")
	}
	if first := a[4]; first[0] == first[1] && first[1] == first[2] && first[2] == first[3] {
		t.Errorf("every row sampled the same first token %v (nanochat's first release broadcast it)", first)
	}
}

// scriptedEngine is an engine whose model writes a script: token i is followed by next[i].
func scriptedEngine(t *testing.T, tok *tokenizer.Tokenizer, next map[int]int) *Generator {
	cfg, w := scripted.Model(tok.VocabSize(), 32, func(i int) int {
		if j, ok := next[i]; ok {
			return j
		}
		return -1
	})
	eng, err := NewGenerator(newModel(t, cfg, w), tok)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// TestToolUse: a scripted model writes <|python_start|>12+30<|python_end|>; the engine
// must force <|output_start|>42<|output_end|>, after which the model ends the reply.
func TestToolUse(t *testing.T) {
	tok := scripted.Tokenizer()
	id := func(name string) int { i, _ := tok.Special(name); return i }
	bos, start, end := id("<|bos|>"), id("<|python_start|>"), id("<|python_end|>")
	eng := scriptedEngine(t, tok, map[int]int{bos: start, start: '1', '1': '2', '2': '+', '+': '3', '3': '0', '0': end,
		end: 'x', id("<|output_end|>"): id("<|assistant_end|>")})
	tokens, sampled, err := eng.Continuations(context.Background(), []int{bos}, Settings{MaxTokens: 20})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{start, '1', '2', '+', '3', '0', end, id("<|output_start|>"), '4', '2', id("<|output_end|>")}
	wantSampled := []bool{true, true, true, true, true, true, true, false, false, false, false}
	if !slices.Equal(tokens[0], want) || !slices.Equal(sampled[0], wantSampled) {
		t.Fatalf("tokens %v sampled %v\nwant   %v sampled %v", tokens[0], sampled[0], want, wantSampled)
	}

	// Without a result (1/0), nothing is forced: the model goes on with its own tokens.
	eng = scriptedEngine(t, tok, map[int]int{bos: start, start: '1', '1': '/', '/': '0', '0': end, end: 'x'})
	tokens, sampled, _ = eng.Continuations(context.Background(), []int{bos}, Settings{MaxTokens: 6})
	if want := []int{start, '1', '/', '0', end, 'x'}; !slices.Equal(tokens[0], want) || slices.Contains(sampled[0], false) {
		t.Errorf("1/0: %v %v, want %v, all sampled", tokens[0], sampled[0], want)
	}
}

func TestSample(t *testing.T) {
	logits := []float32{0.1, 3, -1, 2.9, 2.8, 0}
	r := rand.New(rand.NewPCG(3, 4))
	if got := Sample(logits, 0, 0, r); got != 1 {
		t.Errorf("greedy: %d", got)
	}
	counts := map[int]int{}
	for range 3000 {
		counts[Sample(logits, 1, 3, r)]++
	}
	if len(counts) != 3 || counts[1] == 0 || counts[3] == 0 || counts[4] == 0 {
		t.Errorf("top-3 draws: %v", counts)
	}
	if got := topIndices(logits, 3); !slices.Equal(got, []int{1, 3, 4}) {
		t.Errorf("top 3: %v", got)
	}
	counts = map[int]int{}
	for range 3000 {
		counts[Sample(logits, 100, 0, r)]++ // nearly uniform
	}
	if len(counts) != len(logits) {
		t.Errorf("a high temperature over all tokens drew %v", counts)
	}
}

func TestGenerateErrors(t *testing.T) {
	tok := scripted.Tokenizer()
	cfg := graph.Config{SequenceLen: 4, VocabSize: tok.VocabSize(), NLayer: 1, NHead: 1, NKVHead: 1, NEmbd: 16}
	m := newModel(t, cfg, randomWeightsOf(cfg))
	eng, _ := NewGenerator(m, tok)
	ctx := context.Background()
	for name, c := range map[string]struct {
		prompt []int
		s      Settings
	}{
		"empty prompt":  {nil, Settings{MaxTokens: 1}},
		"temperature":   {[]int{1}, Settings{MaxTokens: 1, Temperature: -1}},
		"top-k":         {[]int{1}, Settings{MaxTokens: 1, TopK: -1}},
		"bad id":        {[]int{999}, Settings{MaxTokens: 1}},
		"prompt length": {make([]int, 40), Settings{MaxTokens: 1}},
	} {
		if err := eng.Generate(ctx, c.prompt, c.s, func(Column) bool { return true }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := eng.Generate(cancelled, []int{1}, Settings{MaxTokens: 5}, func(Column) bool { return true }); err == nil {
		t.Error("a cancelled request went on")
	}
	other := graph.Config{SequenceLen: 4, VocabSize: 300, NLayer: 1, NHead: 1, NKVHead: 1, NEmbd: 16}
	if _, err := NewGenerator(newModel(t, other, randomWeightsOf(other)), tok); err == nil {
		t.Error("a tokenizer of another vocabulary was accepted")
	}
}
