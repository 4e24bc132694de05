package optimizers

import (
	"gochat/backend"

	"gorgonia.org/tensor"
)

// Zeros returns n zeroed floats: in e's memory when e is a backend.Memory, where the
// optimizers' state and a trainer's sums of gradients must live.
func Zeros(e any, n int) []float32 {
	if d, ok := e.(backend.Memory); ok {
		return d.Make(tensor.Float32, n).([]float32)
	}
	return make([]float32, n)
}
