// Package parallel runs loops on several goroutines while keeping the number of busy
// goroutines near the number of processors Go may use, however the loops nest: a loop only
// gets helpers that are idle at that moment, and otherwise runs on its caller. So attention
// split by head can call a matrix product that splits by rows without oversubscribing.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// minWork is the number of element operations below which a loop stays on one goroutine:
// starting goroutines costs more than it saves.
const minWork = 1 << 15

// helpers counts the goroutines lent to loops right now.
var helpers atomic.Int64

// Workers is the number of processors Go may use.
func Workers() int { return runtime.GOMAXPROCS(0) }

// borrow takes up to want idle helpers and returns how many it got.
func borrow(want int) int {
	for {
		busy := helpers.Load()
		got := min(want, Workers()-1-int(busy))
		if got <= 0 {
			return 0
		}
		if helpers.CompareAndSwap(busy, busy+int64(got)) {
			return got
		}
	}
}

// Split runs fn(part, parts) for every part of [0, parts) on the caller and as many idle
// helpers as there are, up to want goroutines in all; parts is the number of goroutines it
// got, so fn divides the work by it.
func Split(want int, fn func(part, parts int)) {
	extra := 0
	if want > 1 {
		extra = borrow(want - 1)
	}
	if extra == 0 {
		fn(0, 1)
		return
	}
	var wg sync.WaitGroup
	wg.Add(extra)
	for p := 1; p <= extra; p++ {
		lend(func() { fn(p, extra+1) }, wg.Done)
	}
	fn(0, extra+1)
	wg.Wait()
	helpers.Add(-int64(extra))
}

// The helpers are goroutines that stay. A job goes to one that waits, which afterwards
// spins a while (yielding to other goroutines) for its next job before it parks: a loop a
// few microseconds after the last, as a decoded token's next matrix product is, then finds
// it awake instead of waiting out a wake-up, which on the development VM took a sixth of
// an int8 token's time. At most Workers()−1 are lent at once (borrow), so no more are made.
var idle struct {
	sync.Mutex
	helpers []*helper
}

// helper is a goroutine that runs the jobs stored in job, woken through wake when parked.
type helper struct {
	job  atomic.Pointer[work]
	wake chan struct{}
}

// work is a job, and what to call once it is done and its helper is idle again.
type work struct{ job, done func() }

// spin is how long a helper looks for its next job before it parks.
const spin = 50 * time.Microsecond

// lend runs job on an idle helper, or a new one, and then done.
func lend(job, done func()) {
	idle.Lock()
	var h *helper
	if n := len(idle.helpers); n > 0 {
		h, idle.helpers = idle.helpers[n-1], idle.helpers[:n-1]
	}
	idle.Unlock()
	if h == nil {
		h = &helper{wake: make(chan struct{}, 1)}
		go h.run()
	}
	h.job.Store(&work{job, done})
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *helper) run() {
	for {
		for deadline := time.Now().Add(spin); h.job.Load() == nil; {
			if time.Now().After(deadline) {
				<-h.wake
				deadline = time.Now().Add(spin)
				continue
			}
			runtime.Gosched()
		}
		w := h.job.Swap(nil)
		w.job()
		select { // a wake the spin made unneeded, drained so that the next park waits
		case <-h.wake:
		default:
		}
		idle.Lock()
		idle.helpers = append(idle.helpers, h)
		idle.Unlock()
		w.done()
	}
}

// For calls fn over contiguous chunks of [0, n), one chunk per goroutine Split gets, when
// n items of the given cost (element operations per item) are worth splitting.
func For(n, cost int, fn func(lo, hi int)) {
	want := min(Workers(), n, max(1, n*cost/minWork))
	Split(want, func(part, parts int) {
		fn(n*part/parts, n*(part+1)/parts)
	})
}

// Each calls fn(item, worker) for every item in [0, n) on up to workers goroutines, handing
// items out one at a time; worker in [0, workers) tells which goroutine runs it, so that
// each can own a scratch buffer.
func Each(n, workers int, fn func(item, worker int)) {
	var next atomic.Int64
	Split(min(workers, n), func(w, _ int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i, w)
		}
	})
}
