package benchmarks

import (
	"fmt"
	"io"
)

// WriteTable prints results as a Markdown table.
func WriteTable(w io.Writer, results []ModelResult) {
	fmt.Fprintln(w, "| config | BLAS | step (s) | tok/s | model GFLOP/s | SGEMM GFLOP/s | ratio | peak RSS (MiB) | heap growth (KiB) | allocs/step |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range results {
		fmt.Fprintf(w, "| %v | %s | %.3f | %.0f | %.1f | %.1f | %.1f%% | %d | %d | %.0f |\n",
			r.Spec, r.BLAS, r.StepSeconds, r.TokensPerSec, r.ModelGFLOPs, r.SgemmGFLOPs, 100*r.Ratio,
			r.PeakRSS>>20, r.HeapGrowth>>10, r.AllocsPerStep)
	}
}
