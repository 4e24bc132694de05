package layers

import (
	"runtime"
	"sync"
)

// minParallelWork is the number of element operations below which a loop stays on one
// goroutine: starting goroutines costs more than it saves.
const minParallelWork = 1 << 15

// parallelFor calls fn over contiguous chunks of [0, n), one chunk per processor when n
// items of the given cost (element operations per item) are worth splitting.
func parallelFor(n, cost int, fn func(lo, hi int)) {
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
