package layers

import (
	"fmt"
	"math"

	"gochat/backend"
	"gochat/internal/parallel"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// IgnoreIndex marks a target position that contributes no loss (PyTorch's ignore_index).
const IgnoreIndex = -1

// Reduction says how per-token losses combine, as PyTorch's loss_reduction does.
type Reduction int

const (
	// Mean averages over the targets that are not IgnoreIndex (0 when there are none).
	Mean Reduction = iota
	// Sum adds the per-token losses.
	Sum
	// PerToken returns every position's loss (0 at ignored positions): bits per byte needs it.
	PerToken
	// Weighted adds the per-token losses weighted by a tensor of weights
	// (LinearCrossEntropyWeighted).
	Weighted
)

// String is PyTorch's name of the reduction: "mean", "sum" or "none" (PerToken); Weighted,
// which PyTorch has not, is "weighted".
func (r Reduction) String() string { return [...]string{"mean", "sum", "none", "weighted"}[r] }

// CrossEntropyForward writes each row's loss lse(z) − z[target] for softcapped logits
// z = cap·tanh(l/cap) (cap 0: z = l); ignored rows get loss 0. When grad is not nil it also
// writes there the gradient of Σ_i scale_i·loss_i with respect to the logits,
// scale_i·(softmax(z) − onehot(target))·dz/dl: one tanh and one exp per logit in all. grad
// may be logits. It fails on a target outside [0, V) that is not IgnoreIndex.
func CrossEntropyForward[T Float](losses, logits []T, targets []int, vocab int, cap T, grad, scale []T) error {
	if err := CheckIDs("target", targets, vocab, true); err != nil {
		return err
	}
	parallel.For(len(targets), 4*vocab, func(lo, hi int) {
		z, dz := make([]T, vocab), make([]T, vocab)
		for i := lo; i < hi; i++ {
			if grad != nil {
				z = grad[i*vocab : (i+1)*vocab]
			}
			t := targets[i]
			if t == IgnoreIndex && grad != nil {
				losses[i] = 0
				clear(z)
				continue
			}
			m := softcapRow(z, dz, logits[i*vocab:(i+1)*vocab], cap)
			zt := z[max(t, 0)]
			sum := expAffine(z, z, 1, -m)
			losses[i] = 0
			if t != IgnoreIndex {
				losses[i] = m + logf(sum) - zt
			}
			if grad != nil {
				g := scale[i]
				inv := g / sum
				for j := range z {
					z[j] *= inv * dz[j]
				}
				z[t] -= g * dz[t]
			}
		}
	})
	return nil
}

// softcapRow sets z = cap·tanh(l/cap) and dz = dz/dl, and returns max z. z may be l.
func softcapRow[T Float](z, dz, l []T, cap T) T {
	m := T(math.Inf(-1))
	if cap == 0 {
		copy(z, l)
		for j := range dz {
			dz[j] = 1
		}
		for _, x := range z {
			m = max(m, x)
		}
		return m
	}
	tanhScaled(dz, l, 1/cap)
	for j, th := range dz {
		z[j], dz[j] = cap*th, 1-th*th
		if z[j] > m {
			m = z[j]
		}
	}
	return m
}

// CheckIDs reports the first id outside [0, vocab), naming it as what ("token id",
// "target"); with ignorable, IgnoreIndex is allowed.
func CheckIDs(what string, ids []int, vocab int, ignorable bool) error {
	for i, id := range ids {
		if id >= vocab || (id < 0 && !(ignorable && id == IgnoreIndex)) {
			return fmt.Errorf("%s %d at position %d is outside the vocabulary of %d", what, id, i, vocab)
		}
	}
	return nil
}

// checkIDsOn is CheckIDs of ids in e's memory where the host reads it. A backend.Remote
// engine's ids are checked where the host wrote them (graph.Model.Run): reading them back
// would wait for the device's work.
func checkIDsOn(e tensor.Engine, what string, ids []int, vocab int, ignorable bool) error {
	if _, remote := e.(backend.Remote); remote {
		return nil
	}
	return CheckIDs(what, ids, vocab, ignorable)
}

// validCount is the number of targets that are not ignored.
func validCount(targets []int) int {
	n := 0
	for _, t := range targets {
		if t != IgnoreIndex {
			n++
		}
	}
	return n
}

// scalarFloat reads a Gorgonia float scalar.
func scalarFloat(s G.Scalar) float64 {
	switch v := s.Data().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return 0
}
