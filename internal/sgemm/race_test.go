//go:build race

package sgemm

// raceEnabled: the race detector makes sync.Pool drop items at random, so allocations are not
// counted.
const raceEnabled = true
