// Package memplan places values with known lifetimes in one allocation, so that values
// alive at the same time never overlap and values that never meet share memory: the
// offset assignment of a memory planner. It knows nothing of graphs; graph.Build gives it
// the lifetimes of a training step's values.
package memplan

import (
	"fmt"
	"sort"
)

// Value is a block of Size units alive from step First to step Last, both included.
type Value struct {
	Size        int
	First, Last int
}

// Place returns an offset for each value and the size of the allocation that holds them
// all: two values whose lifetimes overlap get disjoint ranges. It places the largest values
// first, each at the lowest offset free of the values already placed that it meets
// (greedy by size: within a few percent of the lower bound, the largest number of bytes
// alive at one step, on transformer steps).
func Place(values []Value) (offsets []int, total int, err error) {
	for i, v := range values {
		if v.Size < 0 || v.First > v.Last {
			return nil, 0, fmt.Errorf("memplan: value %d has size %d and lifetime [%d, %d]", i, v.Size, v.First, v.Last)
		}
	}
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		va, vb := values[order[a]], values[order[b]]
		if va.Size != vb.Size {
			return va.Size > vb.Size
		}
		return va.First < vb.First
	})
	offsets = make([]int, len(values))
	var placed []int // indices into values, sorted by offset
	for _, i := range order {
		v := values[i]
		off := 0
		for _, j := range placed {
			w := values[j]
			if w.Last < v.First || v.Last < w.First {
				continue // they never meet
			}
			if offsets[j] >= off+v.Size {
				break // the gap before w holds v
			}
			off = max(off, offsets[j]+w.Size)
		}
		offsets[i] = off
		total = max(total, off+v.Size)
		at := sort.Search(len(placed), func(k int) bool { return offsets[placed[k]] > off })
		placed = append(placed, 0)
		copy(placed[at+1:], placed[at:])
		placed[at] = i
	}
	return offsets, total, nil
}

// Peak is the lower bound of any placement: the largest total size alive at one step.
func Peak(values []Value) int {
	last := 0
	for _, v := range values {
		last = max(last, v.Last)
	}
	delta := make([]int, last+2)
	for _, v := range values {
		delta[v.First] += v.Size
		delta[v.Last+1] -= v.Size
	}
	peak, alive := 0, 0
	for _, d := range delta {
		alive += d
		peak = max(peak, alive)
	}
	return peak
}
