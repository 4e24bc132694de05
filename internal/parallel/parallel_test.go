package parallel

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestNestedLoopsStayWithinProcessors: loops inside loops never run more goroutines at once
// than there are processors, and every item runs exactly once.
func TestNestedLoopsStayWithinProcessors(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	var running, peak atomic.Int64
	counts := make([]atomic.Int64, 64*100)
	Each(64, 8, func(item, _ int) {
		For(100, 1<<20, func(lo, hi int) {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			for i := lo; i < hi; i++ {
				counts[item*100+i].Add(1)
			}
			running.Add(-1)
		})
	})
	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			t.Fatalf("item %d ran %d times", i, c)
		}
	}
	if p := peak.Load(); p > 4 {
		t.Fatalf("%d goroutines worked at once on 4 processors", p)
	}
	if h := helpers.Load(); h != 0 {
		t.Fatalf("%d helpers still lent after the loops", h)
	}
}

// TestHelpersStay: thousands of loops are served by the helpers there are, made only
// while fewer than one fewer than the processors wait, and each loop's parts all run.
func TestHelpersStay(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	count := func() int {
		idle.Lock()
		defer idle.Unlock()
		return len(idle.helpers)
	}
	before := count()
	for range 2000 {
		var parts atomic.Int64
		For(8, 1<<20, func(lo, hi int) { parts.Add(int64(hi - lo)) })
		if parts.Load() != 8 {
			t.Fatalf("a loop ran %d of its 8 items", parts.Load())
		}
	}
	if n := count(); n < 1 || n > max(before, 2) {
		t.Fatalf("%d helpers after the loops on 3 processors (%d before), want 1 to %d", n, before, max(before, 2))
	}
}
