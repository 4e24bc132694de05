package train

import (
	"fmt"
	"strings"

	"gochat/graph"
	"gochat/optimizers"
	"gochat/safetensors"
)

// State returns everything the optimizers carry between steps, as named tensors for a
// safetensors file: the iteration, AdamW's step count and moments, and Muon's momentum
// buffers (parameters that have not been stepped yet have none).
func (t *Trainer) State() map[string]safetensors.Tensor {
	s := map[string]safetensors.Tensor{
		"iter":       safetensors.I64([]int{t.Iter}, 1),
		"adamw.step": safetensors.I64([]int{t.adam.Steps()}, 1),
	}
	for _, p := range t.embed {
		if m, v, ok := t.adam.Moments(p.Name); ok {
			s["adamw.exp_avg."+p.Name] = safetensors.F32(m, p.Shape[0], p.Shape[1])
			s["adamw.exp_avg_sq."+p.Name] = safetensors.F32(v, p.Shape[0], p.Shape[1])
		}
	}
	for _, p := range t.matrix {
		if b, ok := t.muon.Momentum(p.Name); ok {
			s["muon.momentum_buffer."+p.Name] = safetensors.F32(b, p.Shape[0], p.Shape[1])
		}
	}
	return s
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
		copy(dst[param], values)
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
	if err := t.adam.Restore(steps, adamM, adamV); err != nil {
		return fmt.Errorf("optimizer state: %w", err)
	}
	t.muon.Restore(muon)
	t.Iter = iter
	return nil
}
