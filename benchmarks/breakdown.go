package benchmarks

import (
	"bytes"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// Share is the part of the CPU time one kind of work took.
type Share struct {
	Kind    string
	Percent float64
}

// kinds classify a sample by the functions on its stack, first match wins: a matrix product
// inside attention or Newton-Schulz counts for those.
var kinds = []struct{ kind, marker string }{
	{"Newton-Schulz", "optimizers.newtonSchulz"},
	{"optimizer, elementwise", "gochat/optimizers."},
	{"attention", "layers.Attention"},
	{"matmul", "Sgemm"},
	{"cross-entropy", "layers.CrossEntropyForward"},
	{"cross-entropy", "layers.ScaleRows"},
	{"elementwise (norms, rotary, relu², embedding)", "gochat/layers."},
	{"Gorgonia graph (adds, copies, bookkeeping)", "gorgonia.org/"},
	{"Go runtime (GC, scheduler)", "runtime."},
}

// Breakdown attributes the samples of a CPU profile to kinds of work. Samples without Go
// frames are the BLAS library's own threads: matmul.
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
	goFrames := false
	for _, n := range names {
		if strings.Contains(n, ".") && !strings.HasPrefix(n, "runtime._ExternalCode") {
			goFrames = true
		}
	}
	if !goFrames {
		return "matmul"
	}
	for _, k := range kinds {
		for _, n := range names {
			if strings.Contains(n, k.marker) {
				return k.kind
			}
		}
	}
	return "other"
}
