package train

import (
	"fmt"
	"slices"

	"gochat/backend"
	"gochat/dist"
	"gochat/graph"
	"gochat/optimizers"
)

// Data-parallel training, as nanochat's DistMuon and DistAdamW do it: every rank runs its
// own micro-batches, the summed gradients are reduce-scattered so that each rank holds the
// mean gradient of the parameters it owns, each rank updates those (and keeps their
// optimizer state: the state and the Newton-Schulz work are split over the ranks), and the
// updated weights are all-gathered. A parameter is owned whole, so its update is the same
// arithmetic as one process's: the ranks' weights equal a single process's that
// accumulates the same micro-batches, up to the order of the gradient sums.

// Ownership gives each parameter of cfg to a rank of world: the largest first, each to the
// rank that owns the fewest elements so far (the lowest on ties). Every rank computes the
// same.
func Ownership(cfg graph.Config, world int) map[string]int {
	params := cfg.Params()
	order := make([]int, len(params))
	for i := range order {
		order[i] = i
	}
	size := func(p graph.ParamSpec) int { return p.Shape[0] * p.Shape[1] }
	slices.SortStableFunc(order, func(a, b int) int { return size(params[b]) - size(params[a]) })
	load := make([]int, world)
	owner := map[string]int{}
	for _, i := range order {
		r := 0
		for k := range load {
			if load[k] < load[r] {
				r = k
			}
		}
		owner[params[i].Name] = r
		load[r] += size(params[i])
	}
	return owner
}

// layout is where each parameter sits in the buffers the ranks exchange: rank k's
// parameters, in the model's order, from k·part on.
type layout struct {
	owner  map[string]int
	offset map[string]int // from the start of the whole buffer
	part   int            // floats per rank: the largest rank's share
}

func newLayout(cfg graph.Config, world int) layout {
	l := layout{owner: Ownership(cfg, world), offset: map[string]int{}}
	fill := make([]int, world)
	for _, p := range cfg.Params() {
		fill[l.owner[p.Name]] += p.Shape[0] * p.Shape[1]
	}
	l.part = slices.Max(fill)
	next := make([]int, world)
	for k := range next {
		next[k] = k * l.part
	}
	for _, p := range cfg.Params() {
		k := l.owner[p.Name]
		l.offset[p.Name] = next[k]
		next[k] += p.Shape[0] * p.Shape[1]
	}
	return l
}

// shards is a trainer's data-parallel state.
type shards struct {
	comm dist.Comm
	layout
	// all is world·part floats: the sum of this rank's micro-batches' gradients (the
	// trainer's acc are views of it), then the weights gathered from every rank.
	all []float32
	// mine is part floats: the mean gradients of this rank's parameters after the
	// reduce-scatter, then their updated weights.
	mine []float32
}

// Distribute makes the trainer one rank of c: its steps reduce the gradients over the
// ranks and update the parameters this rank owns (Ownership); the optimizer state it keeps
// is theirs. Call it before the first step, on every rank.
func (t *Trainer) Distribute(c dist.Comm) error {
	if t.Iter != 0 || t.acc != nil {
		return fmt.Errorf("trainer: distribute before the first step")
	}
	l := newLayout(t.Model.Config, c.Size())
	s := &shards{comm: c, layout: l}
	s.all = optimizers.Zeros(t.engine, c.Size()*l.part)
	s.mine = optimizers.Zeros(t.engine, l.part)
	t.acc = graph.Weights{}
	for _, p := range t.Model.Config.Params() {
		t.acc[p.Name] = s.view(s.all, p)
	}
	t.shards = s
	return nil
}

// view is p's place in buf: all (from its offset) or mine (from its offset in its rank's part).
func (s *shards) view(buf []float32, p graph.ParamSpec) []float32 {
	off := s.offset[p.Name]
	if len(buf) == s.part {
		off -= s.owner[p.Name] * s.part
	}
	return buf[off : off+p.Shape[0]*p.Shape[1]]
}

// owns reports whether this rank updates parameter name.
func (s *shards) owns(name string) bool { return s == nil || s.owner[name] == s.comm.Rank() }

// reduce sums the ranks' gradients (t.acc, over micro micro-batches each) into this rank's
// part and returns the mean gradient of each parameter it owns.
func (s *shards) reduce(e backend.Backend, specs []graph.ParamSpec, micro int) (graph.Weights, error) {
	if err := e.Sync(); err != nil {
		return nil, err
	}
	if err := s.comm.ReduceScatter(s.all, s.mine); err != nil {
		return nil, err
	}
	e.Scale(s.mine, float32(1/float64(micro*s.comm.Size())))
	grads := graph.Weights{}
	for _, p := range specs {
		if s.owns(p.Name) {
			grads[p.Name] = s.view(s.mine, p)
		}
	}
	return grads, nil
}

// sum adds up x over the ranks (their Σg² of the gradients they own).
func (s *shards) sum(x float64) (float64, error) {
	v := []float64{x}
	err := s.comm.SumHost(v)
	return v[0], err
}

// mean is the mean of x over the ranks (their losses).
func (s *shards) mean(x float64) (float64, error) {
	sum, err := s.sum(x)
	return sum / float64(s.comm.Size()), err
}

// gather sends the weights of this rank's parameters to every rank and copies the others'
// into w.
func (s *shards) gather(e backend.Backend, specs []graph.ParamSpec, w graph.Weights) error {
	return s.share(e, specs, func(name string) []float32 { return w[name] }, func(name string, v []float32) { e.Copy(w[name], v) })
}

// share is one all-gather of a value of each parameter of specs: own gives this rank's
// value of a parameter it owns, and got receives the value of each parameter another rank
// owns (in the engine's memory, valid until the next exchange).
func (s *shards) share(e backend.Backend, specs []graph.ParamSpec, own func(name string) []float32, got func(name string, v []float32)) error {
	for _, p := range specs {
		if s.owns(p.Name) {
			e.Copy(s.view(s.mine, p), own(p.Name))
		}
	}
	if err := e.Sync(); err != nil {
		return err
	}
	if err := s.comm.AllGather(s.mine, s.all); err != nil {
		return err
	}
	if err := e.Sync(); err != nil {
		return err
	}
	for _, p := range specs {
		if !s.owns(p.Name) {
			got(p.Name, s.view(s.all, p))
		}
	}
	return e.Sync()
}
