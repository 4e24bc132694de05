package benchmarks

import (
	"bytes"
	"gochat/backend"
	"slices"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// Share is the part of the CPU time one kind of work took.
type Share struct {
	Kind    string
	Percent float64
}

// kinds classify a sample of the forward and backward passes by the functions on its
// stack, first match wins. Matrix products split across helper goroutines show only
// cpubackend's frames there, so they count as matmul even inside attention.
var kinds = []struct{ kind, marker string }{
	{"attention", "layers.Attention"},
	{"matmul", "gochat/cpubackend."},
	{"cross-entropy", "layers.CrossEntropyForward"},
	{"elementwise (norms, rotary, relu², embedding, residual)", "gochat/layers."},
	{"Gorgonia graph (gradient sums, bookkeeping)", "gorgonia.org/"},
	{"Go runtime (GC, scheduler)", "runtime."},
}

// optimizerPhase labels the samples of the optimizer's step (pprof labels pass to the
// goroutines it starts): their matrix products are all Newton-Schulz.
const optimizerPhase = "optimizer"

// Breakdown attributes the samples of a CPU profile to kinds of work. Samples without Go
// frames are the BLAS library's: matmul, or Newton-Schulz in the optimizer phase.
func Breakdown(raw []byte) ([]Share, error) {
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	totals := map[string]int64{}
	var all int64
	for _, s := range p.Sample {
		v := s.Value[len(s.Value)-1]
		all += v
		totals[classify(s)] += v
	}
	shares := make([]Share, 0, len(totals))
	for k, v := range totals {
		shares = append(shares, Share{Kind: k, Percent: 100 * float64(v) / float64(max(all, 1))})
	}
	sort.Slice(shares, func(i, j int) bool { return shares[i].Percent > shares[j].Percent })
	return shares, nil
}

func classify(s *profile.Sample) string {
	var names []string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				names = append(names, line.Function.Name)
			}
		}
	}
	has := func(marker string) bool {
		for _, n := range names {
			if strings.Contains(n, marker) {
				return true
			}
		}
		return false
	}
	blas := !has(".") || has("gochat/cpubackend.") || has("runtime.cgocall")
	if slices.Contains(s.Label["phase"], optimizerPhase) {
		if blas || has("optimizers.newtonSchulz") {
			return "Newton-Schulz (Muon)"
		}
		return "optimizer, elementwise (clipping, AdamW, momentum)"
	}
	if !has(".") {
		return "matmul"
	}
	for _, k := range kinds {
		if has(k.marker) {
			return k.kind
		}
	}
	return "other"
}

// DeviceShare is one kind of device work in a training step.
type DeviceShare struct {
	Kind           string
	CallsPerStep   float64
	SecondsPerStep float64
}

// deviceShares turns a device profile of steps steps into shares per step, largest first.
func deviceShares(times map[string]backend.KernelTime, steps int) []DeviceShare {
	var out []DeviceShare
	for kind, t := range times {
		out = append(out, DeviceShare{Kind: kind, CallsPerStep: float64(t.Calls) / float64(steps), SecondsPerStep: t.Seconds / float64(steps)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SecondsPerStep > out[j].SecondsPerStep })
	return out
}
