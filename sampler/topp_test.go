package sampler

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gochat/internal/scripted"
)

// TestNucleus: the nucleus is the fewest most likely tokens whose probabilities reach p,
// after the temperature and within the top k; draws stay inside it, in proportion.
func TestNucleus(t *testing.T) {
	// Probabilities 0.05, 0.5, 0.15, 0.3 at temperature 1, the largest not first.
	logits := []float32{float32(math.Log(0.05)), float32(math.Log(0.5)), float32(math.Log(0.15)), float32(math.Log(0.3))}
	for _, c := range []struct {
		temperature float64
		topK        int
		p           float64
		want        int
	}{
		{1, 0, 0.4, 1}, {1, 0, 0.55, 2}, {1, 0, 0.9, 3}, {1, 0, 0.97, 4},
		{1, 2, 0.97, 2},   // the top 2 hold 0.8: renormalised, 0.97 needs both
		{1, 3, 0.8, 2},    // the top 3 renormalised: 0.53, 0.32, 0.16
		{0.5, 0, 0.9, 2},  // squared and renormalised: 0.69, 0.25, 0.06, 0.01
		{100, 0, 0.55, 3}, // nearly uniform
	} {
		if got := nucleus(logits, c.temperature, c.topK, c.p); got != c.want {
			t.Errorf("temperature %g, top-k %d, p %g: %d tokens, want %d", c.temperature, c.topK, c.p, got, c.want)
		}
	}

	s := Settings{Temperature: 1, TopP: 0.75}
	r := rand.New(rand.NewPCG(5, 6))
	counts := map[int]int{}
	const draws = 20000
	for range draws {
		counts[Sample(logits, s.Temperature, s.topK(logits), r)]++
	}
	if len(counts) != 2 {
		t.Fatalf("top-p 0.75 drew %v, want tokens 1 and 3 only", counts)
	}
	if share := float64(counts[1]) / draws; math.Abs(share-0.5/0.8) > 0.02 {
		t.Errorf("token 1 drawn %.3f of the time, want 0.625", share)
	}
	for _, off := range []Settings{{Temperature: 1}, {Temperature: 1, TopP: 1}, {TopP: 0.1}} {
		if got := off.topK(logits); got != 0 {
			t.Errorf("%+v: top-k %d, want no cut", off, got)
		}
	}
}

// TestGenerateTopP: at temperature 2 the scripted model gives its next token a probability
// of about 0.6, so with top-p 0.5 the nucleus is that token alone and sampling writes the
// script; without top-p, it does not. Generate refuses a top-p outside [0, 1].
func TestGenerateTopP(t *testing.T) {
	tok := scripted.Tokenizer()
	eng := scriptedEngine(t, tok, map[int]int{256: 'a', 'a': 'b', 'b': 'a'})
	run := func(topP float64, seed uint64) []int {
		rows, _, err := eng.Continuations(context.Background(), []int{256}, Settings{MaxTokens: 20, Temperature: 2, TopP: topP, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return rows[0]
	}
	greedy := []int{'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'}
	for seed := range uint64(5) {
		if got := run(0.5, seed); !slices.Equal(got, greedy) {
			t.Errorf("seed %d, top-p 0.5: %v, want the script", seed, got)
		}
	}
	if got := run(0, 1); slices.Equal(got, greedy) {
		t.Errorf("without top-p, temperature 2 wrote the script")
	}
	for _, p := range []float64{-0.1, 1.5, math.NaN()} {
		if err := eng.Generate(context.Background(), []int{256}, Settings{MaxTokens: 1, TopP: p}, func(Column) bool { return true }); err == nil {
			t.Errorf("top-p %g accepted", p)
		}
	}
}
