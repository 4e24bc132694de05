// Package parallel splits loops across goroutines, one chunk per processor Go may use.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// minParallelWork is the number of element operations below which a loop stays on one
// goroutine: starting goroutines costs more than it saves.
const minParallelWork = 1 << 15

// For calls fn over contiguous chunks of [0, n), one chunk per processor when n items of
// the given cost (element operations per item) are worth splitting.
func For(n, cost int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || n*cost < minParallelWork {
		fn(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// Each calls fn(item, worker) for every item in [0, n) on up to workers goroutines; worker
// in [0, workers) tells which goroutine runs it, so that each can own a scratch buffer.
// Items are handed out one at a time.
func Each(n, workers int, fn func(item, worker int)) {
	workers = min(workers, n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i, 0)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i, w)
			}
		}()
	}
	wg.Wait()
}

// Workers is the number of goroutines worth using: one per processor Go may use.
func Workers() int { return runtime.GOMAXPROCS(0) }
