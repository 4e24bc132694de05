// Package eval holds the evaluations of nanochat: CORE (base_eval.py and core_eval.py), to
// begin with the order it evaluates a task's items in and the few-shot examples each item
// is shown, which CPython's random module decides.
package eval

import "gochat/internal/pyrandom"

// CoreOrder is the order CORE evaluates a task's n items in, as indices of its file's
// lines: the items shuffled with CPython's random.Random(1337), then the first maxPerTask
// of them (all when maxPerTask ≤ 0).
func CoreOrder(n, maxPerTask int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	pyrandom.New(1337).Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	if maxPerTask > 0 && maxPerTask < n {
		order = order[:maxPerTask]
	}
	return order
}

// FewShot is the positions, in CoreOrder's order of n items, of the k few-shot examples the
// item at position idx is shown: random.Random(1234 + idx).sample of every other position.
func FewShot(n, idx, k int) []int {
	picked := pyrandom.New(uint64(1234+idx)).Sample(n-1, k)
	for i, p := range picked {
		if p >= idx { // the positions other than idx, in order: idx is skipped
			picked[i] = p + 1
		}
	}
	return picked
}
