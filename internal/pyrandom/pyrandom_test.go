package pyrandom

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

func TestMatchesCPython(t *testing.T) {
	raw, err := os.ReadFile("testdata/cpython_random.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Shuffle []struct {
			Seed     uint64
			N        int
			Shuffled []int
		}
		GetRandBitsSeq []struct {
			Seed   uint64
			K      int
			Values []uint64
		} `json:"getrandbits_seq"`
		Sample []struct {
			Seed   uint64
			N, K   int
			Sample []int
		}
	}
	json.Unmarshal(raw, &want)
	for _, c := range want.Shuffle {
		x := make([]int, c.N)
		for i := range x {
			x[i] = i
		}
		New(c.Seed).Shuffle(len(x), func(i, j int) { x[i], x[j] = x[j], x[i] })
		if c.N > 10 {
			x = append(x[:20:20], x[len(x)-5:]...)
		}
		if !slices.Equal(x, c.Shuffled) {
			t.Errorf("seed %d n %d: %v, want %v", c.Seed, c.N, x, c.Shuffled)
		}
	}
	r := New(42)
	for _, c := range want.GetRandBitsSeq {
		for i, v := range c.Values {
			if got := r.GetRandBits(c.K); got != v {
				t.Fatalf("getrandbits(%d) #%d: %d, want %d", c.K, i, got, v)
			}
		}
	}
	for _, c := range want.Sample {
		if got := New(c.Seed).Sample(c.N, c.K); !slices.Equal(got, c.Sample) {
			t.Errorf("seed %d: sample(range(%d), %d) = %v, want %v", c.Seed, c.N, c.K, got, c.Sample)
		}
	}
}
