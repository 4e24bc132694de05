package memplan

import (
	"math/rand/v2"
	"testing"
)

func TestPlaceByHand(t *testing.T) {
	// a and b meet; c comes after both and takes a's place; d meets only c.
	values := []Value{
		{Size: 4, First: 0, Last: 2}, // a
		{Size: 2, First: 1, Last: 3}, // b
		{Size: 4, First: 3, Last: 5}, // c
		{Size: 3, First: 5, Last: 6}, // d
	}
	offsets, total, err := Place(values)
	if err != nil {
		t.Fatal(err)
	}
	// By size: a at 0, c meets b only... c is placed second (size 4, first 3): it meets
	// nothing placed (a ends at 2), so 0; b meets a and c: 4; d meets c: 4.
	want := []int{0, 4, 0, 4}
	for i := range want {
		if offsets[i] != want[i] {
			t.Fatalf("offsets %v, want %v", offsets, want)
		}
	}
	if total != 7 || Peak(values) != 7 {
		t.Fatalf("total %d, peak %d, want 7 and 7", total, Peak(values))
	}
}

func TestPlaceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + r.IntN(60)
		values := make([]Value, n)
		for i := range values {
			first := r.IntN(40)
			values[i] = Value{Size: r.IntN(100), First: first, Last: first + r.IntN(10)}
		}
		offsets, total, err := Place(values)
		if err != nil {
			t.Fatal(err)
		}
		if peak := Peak(values); total < peak {
			t.Fatalf("trial %d: total %d below the peak %d", trial, total, peak)
		}
		for i, a := range values {
			if offsets[i] < 0 || offsets[i]+a.Size > total {
				t.Fatalf("trial %d: value %d at %d+%d outside %d", trial, i, offsets[i], a.Size, total)
			}
			for j, b := range values[:i] {
				meet := a.First <= b.Last && b.First <= a.Last
				apart := offsets[i]+a.Size <= offsets[j] || offsets[j]+b.Size <= offsets[i]
				if meet && !apart && a.Size > 0 && b.Size > 0 {
					t.Fatalf("trial %d: values %d %+v at %d and %d %+v at %d meet and overlap", trial, i, a, offsets[i], j, b, offsets[j])
				}
			}
		}
	}
}

func TestPlaceRefusesBadLifetimes(t *testing.T) {
	if _, _, err := Place([]Value{{Size: 1, First: 3, Last: 2}}); err == nil {
		t.Fatal("a value that dies before it is made was placed")
	}
}
