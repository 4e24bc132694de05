// Package dist spreads one training run over several processes, the ranks, through the
// collective libraries users already run: Open MPI for CPUs and Macs (mpi.go), NCCL for
// NVIDIA GPUs (cudabackend's NCCL communicator). A Comm is what the trainer needs of them:
// sums, reduce-scatters and gathers of float32 buffers in the engine's memory, and a few
// host-side agreements (a stop, the loss, where each rank's data stands).
//
// Every collective is called by every rank, in the same order; one that does not finish
// within the communicator's timeout (a rank died or hangs) ends this process with a message
// that says so, and the launcher (mpirun, or gochat's own) ends the others.
package dist

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// Comm is one rank's side of a group of Size() processes.
type Comm interface {
	// Rank is this process's place in the group, 0 ≤ Rank() < Size().
	Rank() int
	// Size is the number of processes.
	Size() int
	// AllReduce sums x over the ranks, in place. x is in the engine's memory.
	AllReduce(x []float32) error
	// ReduceScatter sums send over the ranks and leaves this rank's part of the sum in
	// recv: send is Size() parts of len(recv) each, and recv gets the Rank()th.
	ReduceScatter(send, recv []float32) error
	// AllGather concatenates every rank's send into recv, in rank order
	// (len(recv) = Size()·len(send)).
	AllGather(send, recv []float32) error
	// SumHost and MaxHost reduce host values over the ranks, in place, in float64.
	SumHost(x []float64) error
	MaxHost(x []float64) error
	// GatherHost concatenates every rank's send, of the same length on every rank, into
	// recv, in rank order; host memory.
	GatherHost(send, recv []byte) error
	// Close leaves the group; the communicator is unusable after it.
	Close() error
}

// DefaultTimeout is how long a collective may wait for the other ranks before the rank
// gives up: long enough for the slowest step and an evaluation of rank 0 alone, short
// enough that a dead job is noticed (PyTorch's NCCL watchdog waits 10 minutes too).
const DefaultTimeout = 10 * time.Minute

// StallExit is the exit status of a rank that gave up waiting for the others (EX_TEMPFAIL).
const StallExit = 75

// Watchdog guards the collectives of rank Rank of Size: one that has not returned after
// Timeout means a rank died or hangs, and the process ends with a message saying so (the
// library's call cannot be cancelled; the launcher then ends the others).
type Watchdog struct {
	Rank, Size int
	Timeout    time.Duration
}

// Guard runs f, the collective what, under the watchdog.
func (w Watchdog) Guard(what string, f func()) {
	timer := time.AfterFunc(w.Timeout, func() {
		fmt.Fprintf(os.Stderr, "gochat: rank %d of %d: %s waited %v for the other ranks: one of them stopped or hangs; ending this rank\n",
			w.Rank, w.Size, what, w.Timeout)
		os.Exit(StallExit)
	})
	defer timer.Stop()
	f()
}

// Exchange gives every rank each rank's b, in rank order; the lengths may differ.
func Exchange(c Comm, b []byte) ([][]byte, error) {
	n := c.Size()
	size := make([]byte, 8)
	binary.LittleEndian.PutUint64(size, uint64(len(b)))
	sizes := make([]byte, 8*n)
	if err := c.GatherHost(size, sizes); err != nil {
		return nil, err
	}
	longest := 0
	lens := make([]int, n)
	for r := range n {
		lens[r] = int(binary.LittleEndian.Uint64(sizes[8*r:]))
		longest = max(longest, lens[r])
	}
	padded := make([]byte, longest)
	copy(padded, b)
	all := make([]byte, longest*n)
	if err := c.GatherHost(padded, all); err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for r := range n {
		out[r] = all[r*longest : r*longest+lens[r]]
	}
	return out, nil
}

// Agree reports whether any rank says yes: the ranks decide together, so that they take
// the same branch (a stop asked for by a signal on one of them, say).
func Agree(c Comm, yes bool) (bool, error) {
	x := []float64{0}
	if yes {
		x[0] = 1
	}
	if err := c.MaxHost(x); err != nil {
		return false, err
	}
	return x[0] > 0, nil
}

// CheckSame fails unless every rank passes the same what: settings that must agree (the
// model, the batch geometry), or every rank would train a different run.
func CheckSame(c Comm, name string, what []byte) error {
	all, err := Exchange(c, what)
	if err != nil {
		return err
	}
	for r, b := range all {
		if string(b) != string(all[0]) {
			return fmt.Errorf("rank %d's %s (%s) differs from rank 0's (%s): every rank must run the same command", r, name, b, all[0])
		}
	}
	return nil
}
