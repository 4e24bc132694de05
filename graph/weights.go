package graph

import (
	"fmt"
	"math"
	"sort"

	"gochat/backend"
	"gochat/safetensors"
)

// ReadWeights reads parameters from a safetensors file (any float dtype) as float32.
func ReadWeights(path string) (Weights, error) {
	ts, _, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	w := Weights{}
	for name, t := range ts {
		if w[name], err = t.Float32s(); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
	}
	return w, nil
}

// WriteWeights writes the config's parameters to a safetensors file in nanochat's names and
// PyTorch's [out, in] layout, atomically.
func (c Config) WriteWeights(path string, w Weights) error {
	if err := c.Check(w); err != nil {
		return err
	}
	ts := map[string]safetensors.Tensor{}
	for _, p := range c.Params() {
		ts[p.Name] = safetensors.F32(w[p.Name], p.Shape[0], p.Shape[1])
	}
	if err := safetensors.Write(path, ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("saving weights: %w", err)
	}
	return nil
}

// Finite checks that no weight is NaN or infinite: the weights of a run that diverged
// evaluate and sample as if they were a model.
func (w Weights) Finite() error {
	names := make([]string, 0, len(w))
	for name := range w {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		bad := 0
		for _, v := range w[name] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				bad++
			}
		}
		if bad > 0 {
			return fmt.Errorf("%s holds %d NaN or infinite values of %d: the run diverged; load an earlier step", name, bad, len(w[name]))
		}
	}
	return nil
}

// OnHost returns w, tensors in e's memory, where the host may read them
// (backend.Readable): w's own slices once e is idle, or copies from a backend.Remote e.
func (w Weights) OnHost(e any) (Weights, error) {
	h := Weights{}
	for name, x := range w {
		var err error
		if h[name], err = backend.Readable(e, x); err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	return h, nil
}
