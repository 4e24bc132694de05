package benchmarks

import (
	"fmt"
	"testing"

	"gochat/cpubackend"
)

// BenchmarkSample runs the standard generation configurations; b.N is the number of
// decode steps timed.
func BenchmarkSample(b *testing.B) {
	bandwidth := MeasureBandwidth()
	for _, spec := range StandardSamples {
		b.Run(fmt.Sprintf("d%d_V%d_B%d", spec.Depth, spec.Vocab, spec.Batch), func(b *testing.B) {
			res, err := RunSample(spec, cpubackend.New(nil), max(b.N, 1), bandwidth)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PrefillTokSec, "prefill-tok/s")
			b.ReportMetric(res.DecodeTokSec, "decode-tok/s")
			b.ReportMetric(100*res.Utilisation, "%copy-bandwidth")
			b.ReportMetric(100*res.OfRead, "%read-bandwidth")
		})
	}
}
