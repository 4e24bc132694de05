package graph

import (
	"fmt"

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
