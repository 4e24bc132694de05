package train

import (
	"cmp"
	"fmt"
	"strings"

	"gochat/backend"
	"gochat/graph"
	"gochat/optimizers"
	"gochat/safetensors"
)

// State returns everything the optimizers carry between steps, as named tensors for a
// safetensors file: the iteration, AdamW's step count and moments, and Muon's momentum
// buffers (parameters that have not been stepped yet have none). On a distributed trainer
// it is a collective that every rank calls: rank 0 gets the whole state, gathered from the
// ranks that own it, and the others their own part.
func (t *Trainer) State() (map[string]safetensors.Tensor, error) {
	s := map[string]safetensors.Tensor{
		"iter":       safetensors.I64([]int{t.Iter}, 1),
		"adamw.step": safetensors.I64([]int{t.adam.Steps()}, 1),
	}
	rounds := t.stateTensors()
	for _, round := range rounds {
		for _, x := range round {
			if v := x.value(); v != nil && t.shards.owns(x.param.Name) {
				h, err := backend.Readable(t.engine, v)
				if err != nil {
					return nil, fmt.Errorf("optimizer state: %w", err)
				}
				s[x.key] = safetensors.F32(h, x.param.Shape[0], x.param.Shape[1])
			}
		}
	}
	if t.shards == nil || t.Iter == 0 { // before the first step no rank has any
		return s, nil
	}
	root := t.shards.comm.Rank() == 0
	for _, round := range rounds {
		specs := make([]graph.ParamSpec, len(round))
		byName := map[string]stateTensor{}
		for i, x := range round {
			specs[i], byName[x.param.Name] = x.param, x
		}
		var readErr error
		err := t.shards.share(t.engine, specs, func(name string) []float32 { return byName[name].value() },
			func(name string, v []float32) {
				if x := byName[name]; root {
					h := make([]float32, len(v))
					readErr = cmp.Or(readErr, backend.Read(t.engine, h, v))
					s[x.key] = safetensors.F32(h, x.param.Shape[0], x.param.Shape[1])
				}
			})
		if err = cmp.Or(err, readErr); err != nil {
			return nil, fmt.Errorf("optimizer state: %w", err)
		}
	}
	return s, nil
}

// stateTensor is one tensor of the optimizers' state: its name in the file, its parameter,
// and its value on this rank (nil before the parameter's first step, or when another rank
// owns it).
type stateTensor struct {
	key   string
	param graph.ParamSpec
	value func() []float32
}

// stateTensors lists the optimizers' state in rounds that name each parameter at most once
// (the ranks exchange one round at a time): AdamW's first moments with Muon's momentum,
// then AdamW's second moments.
func (t *Trainer) stateTensors() [][]stateTensor {
	var first, second []stateTensor
	for _, p := range t.embed {
		name := p.Name
		first = append(first, stateTensor{"adamw.exp_avg." + name, p, func() []float32 { m, _, _ := t.adam.Moments(name); return m }})
		second = append(second, stateTensor{"adamw.exp_avg_sq." + name, p, func() []float32 { _, v, _ := t.adam.Moments(name); return v }})
	}
	for _, p := range t.matrix {
		name := p.Name
		first = append(first, stateTensor{"muon.momentum_buffer." + name, p, func() []float32 { b, _ := t.muon.Momentum(name); return b }})
	}
	return [][]stateTensor{first, second}
}

// LoadState restores what State returned, checking every tensor against the model.
func (t *Trainer) LoadState(s map[string]safetensors.Tensor) error {
	scalar := func(name string) (int, error) {
		x, ok := s[name]
		if !ok {
			return 0, fmt.Errorf("optimizer state: missing %s", name)
		}
		v, err := x.Ints()
		if err != nil || len(v) != 1 {
			return 0, fmt.Errorf("optimizer state: %s is not one integer", name)
		}
		return v[0], nil
	}
	iter, err := scalar("iter")
	if err != nil {
		return err
	}
	steps, err := scalar("adamw.step")
	if err != nil {
		return err
	}
	shapes := map[string][2]int{}
	for _, p := range append(append([]graph.ParamSpec(nil), t.embed...), t.matrix...) {
		shapes[p.Name] = p.Shape
	}
	adamM, adamV, muon := map[string][]float32{}, map[string][]float32{}, map[string][]float32{}
	for name, x := range s {
		var dst map[string][]float32
		var param string
		switch {
		case name == "iter" || name == "adamw.step":
			continue
		case strings.HasPrefix(name, "adamw.exp_avg_sq."):
			dst, param = adamV, strings.TrimPrefix(name, "adamw.exp_avg_sq.")
		case strings.HasPrefix(name, "adamw.exp_avg."):
			dst, param = adamM, strings.TrimPrefix(name, "adamw.exp_avg.")
		case strings.HasPrefix(name, "muon.momentum_buffer."):
			dst, param = muon, strings.TrimPrefix(name, "muon.momentum_buffer.")
		default:
			return fmt.Errorf("optimizer state: unexpected tensor %s", name)
		}
		shape, ok := shapes[param]
		if !ok || x.DType != "F32" || x.Len() != shape[0]*shape[1] {
			return fmt.Errorf("optimizer state: %s (%s %v) does not fit this model", name, x.DType, x.Shape)
		}
		values, err := x.Float32s()
		if err != nil {
			return err
		}
		dst[param] = optimizers.Zeros(t.engine, len(values))
		if err := backend.Write(t.engine, dst[param], values); err != nil {
			return fmt.Errorf("optimizer state: %s: %w", name, err)
		}
	}
	// Every step updates every parameter: after one, each has its whole state.
	if steps != iter {
		return fmt.Errorf("optimizer state: AdamW took %d steps, the trainer %d", steps, iter)
	}
	if iter > 0 {
		for _, p := range t.embed {
			if adamM[p.Name] == nil || adamV[p.Name] == nil {
				return fmt.Errorf("optimizer state: no AdamW moments for %s after %d steps", p.Name, iter)
			}
		}
		for _, p := range t.matrix {
			if muon[p.Name] == nil {
				return fmt.Errorf("optimizer state: no Muon momentum for %s after %d steps", p.Name, iter)
			}
		}
	}
	for _, state := range []map[string][]float32{adamM, adamV, muon} { // a rank keeps its parameters'
		for name := range state {
			if !t.shards.owns(name) {
				delete(state, name)
			}
		}
	}
	if err := t.adam.Restore(steps, adamM, adamV); err != nil {
		return fmt.Errorf("optimizer state: %w", err)
	}
	t.muon.Restore(muon)
	t.Iter = iter
	return nil
}
