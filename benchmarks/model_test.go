package benchmarks

import (
	"fmt"
	"strings"
	"testing"

	"gochat/cpubackend"
)

// BenchmarkModel runs the standard configurations, forward+backward alone and the whole
// training step; each reports the step's time and tokens/s, the forward+backward GFLOP/s
// and its ratio to SGEMM in the same process, and peak RSS. b.N is the number of timed
// steps.
func BenchmarkModel(b *testing.B) {
	for _, spec := range StandardModels {
		for _, fb := range []bool{true, false} {
			name := fmt.Sprintf("d%d_T%d_B%d_V%d/step", spec.Depth, spec.SeqLen, spec.Batch, spec.Vocab)
			if fb {
				name = strings.TrimSuffix(name, "step") + "fwdbwd"
			}
			b.Run(name, func(b *testing.B) {
				res, err := RunModel(spec, Options{Steps: max(b.N, 1), Engine: cpubackend.New(nil), ForwardBackward: fb})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.StepSeconds*1e9, "ns/step")
				b.ReportMetric(res.TokensPerSec, "tok/s")
				b.ReportMetric(res.ModelGFLOPs, "GFLOP/s")
				b.ReportMetric(100*res.Ratio, "%sgemm")
				b.ReportMetric(float64(res.PeakRSS>>20), "peakMiB")
			})
		}
	}
}

// BenchmarkSgemm is the reference rate of the ratio.
func BenchmarkSgemm(b *testing.B) {
	blas := cpubackend.Default()
	m, n, k := 1024, 3072, 768
	a, x, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	b.ResetTimer()
	for b.Loop() {
		blas.Sgemm(false, false, m, n, k, 1, a, k, x, n, 0, c, n)
	}
	b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
