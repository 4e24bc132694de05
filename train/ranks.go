package train

import (
	"encoding/json"
	"fmt"
	"io"

	"gochat/dist"
	"gochat/loader"
	"gochat/tasks"
)

// A distributed run (Run.Comm with several ranks) is one run spread over processes: every
// rank trains on its own stride of the data and the trainer reduces the gradients
// (Trainer.Distribute); rank 0 alone logs, writes the metrics, the plots and the
// checkpoints, and samples; the evaluations are shared out batch by batch and their sums
// reduced, so that they measure what one process measures. The ranks decide together
// where the loop stops (a signal on any of them, the end of any rank's data) and what a
// time budget's horizon is, so that they call the same collectives in the same order.
// Every rank resumes from the same checkpoint, each at its own data position, which the
// checkpoint keeps for each rank: a run resumes only on as many ranks as it ran on.

// group is the ranks a run's work is shared out over; a nil comm is one process.
type group struct{ comm dist.Comm }

// size is the number of ranks.
func (g group) size() int {
	if g.comm == nil {
		return 1
	}
	return g.comm.Size()
}

// rank is this process's rank.
func (g group) rank() int {
	if g.comm == nil {
		return 0
	}
	return g.comm.Rank()
}

// root reports whether this process is rank 0, which writes the run's files.
func (g group) root() bool { return g.rank() == 0 }

// distributed reports whether there are other ranks.
func (g group) distributed() bool { return g.size() > 1 }

// mine reports whether this rank does the i-th item of work shared out over the ranks.
func (g group) mine(i int) bool { return i%g.size() == g.rank() }

// sum adds up xs over the ranks, in place.
func (g group) sum(xs ...*float64) error {
	return hostReduce(g, dist.Comm.SumHost, xs, func(x float64) float64 { return x }, func(v float64) float64 { return v })
}

// any reports for each of yes whether it holds on some rank.
func (g group) any(yes ...*bool) error {
	return hostReduce(g, dist.Comm.MaxHost, yes, func(y bool) float64 {
		if y {
			return 1
		}
		return 0
	}, func(v float64) bool { return v > 0 })
}

// largest makes each of xs the largest of its values over the ranks.
func (g group) largest(xs ...*int) error {
	return hostReduce(g, dist.Comm.MaxHost, xs, func(x int) float64 { return float64(x) }, func(v float64) int { return int(v) })
}

// hostReduce reduces xs over the ranks with the host collective op, in place, through
// float64 (to and from convert).
func hostReduce[T any](g group, op func(dist.Comm, []float64) error, xs []*T, to func(T) float64, from func(float64) T) error {
	if !g.distributed() {
		return nil
	}
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = to(*x)
	}
	if err := op(g.comm, v); err != nil {
		return err
	}
	for i, x := range xs {
		*x = from(v[i])
	}
	return nil
}

// RankPosition is where one rank's data stood at a saved step (Loop.Ranks).
type RankPosition struct {
	Loader loader.Position `json:"loader_position"`
	Data   *tasks.Position `json:"data_position,omitempty"`
}

// exchange gives every rank each rank's position, in rank order.
func (g group) exchange(p RankPosition) ([]RankPosition, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	all, err := dist.Exchange(g.comm, raw)
	if err != nil {
		return nil, err
	}
	out := make([]RankPosition, len(all))
	for r, b := range all {
		if err := json.Unmarshal(b, &out[r]); err != nil {
			return nil, fmt.Errorf("rank %d's data position: %w", r, err)
		}
	}
	return out, nil
}

// asRank is the run as this rank does it: silent unless it is rank 0.
func (r Run) asRank() Run {
	g := group{r.Comm}
	if !g.root() {
		r.Log, r.Progress = io.Discard, nil
	}
	if g.distributed() {
		r.Settings.World = g.size()
		r.Peak.FLOPS *= float64(g.size()) // MFU is a share of every rank's device
	}
	return r
}
