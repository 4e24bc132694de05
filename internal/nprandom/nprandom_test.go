package nprandom

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestMatchesNumpy checks the seeding, the raw outputs and permutations against numpy 2.5's
// own (testdata/numpy_random.json, printed by numpy on the GPU machine).
func TestMatchesNumpy(t *testing.T) {
	raw, err := os.ReadFile("testdata/numpy_random.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		SeedState []uint32 `json:"seedstate"`
		Raw       []uint64 `json:"raw"`
		Perm      []struct {
			Seed       uint64
			N          int
			Head, Tail []int
		} `json:"perm"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if got := seedState(42, 8); !slices.Equal(got, want.SeedState) {
		t.Errorf("SeedSequence(42).generate_state(8) = %v, want %v", got, want.SeedState)
	}
	p := DefaultRNG(42)
	for i, w := range want.Raw {
		if got := p.Uint64(); got != w {
			t.Fatalf("random_raw #%d = %d, want %d", i, got, w)
		}
	}
	for _, c := range want.Perm {
		got := DefaultRNG(c.Seed).Permutation(c.N)
		head, tail := got[:min(20, c.N)], got[max(0, c.N-5):]
		if !slices.Equal(head, c.Head) || !slices.Equal(tail, c.Tail) {
			t.Errorf("seed %d permutation(%d): %v … %v, want %v … %v", c.Seed, c.N, head, tail, c.Head, c.Tail)
		}
	}
}
