package benchmarks

import (
	"fmt"
	"io"
)

// WriteTable prints results as a Markdown table.
func WriteTable(w io.Writer, results []ModelResult) {
	fmt.Fprintln(w, "| config | BLAS, threads | fwd+bwd (s) | optimizer (s) | step (s) | tok/s | fwd+bwd GFLOP/s | SGEMM GFLOP/s | ratio | peak RSS (MiB) | heap growth (KiB) | allocs/step |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range results {
		fmt.Fprintf(w, "| %v | %s, %d | %.3f | %.3f | %.3f | %.0f | %.1f | %.1f | %.1f%% | %d | %d | %.0f |\n",
			r.Spec, r.BLAS, r.Threads, r.FwdBwdSeconds, r.OptimizerSeconds, r.StepSeconds, r.TokensPerSec,
			r.ModelGFLOPs, r.SgemmGFLOPs, 100*r.Ratio, r.PeakRSS>>20, r.HeapGrowth>>10, r.AllocsPerStep)
	}
}

// WriteDeviceMemory prints, for the results on an accelerator engine, the memory its
// tensors took.
func WriteDeviceMemory(w io.Writer, results []ModelResult) {
	for _, r := range results {
		if r.DeviceBytes > 0 {
			fmt.Fprintf(w, "\n%v: the engine's tensors took %d MiB of device memory\n", r.Spec, r.DeviceBytes>>20)
		}
	}
}

// WriteBreakdowns prints, for the results that were profiled, where the CPU time went.
func WriteBreakdowns(w io.Writer, results []ModelResult) {
	for _, r := range results {
		if len(r.Breakdown) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%v: share of CPU time\n\n| work | CPU time |\n| --- | --- |\n", r.Spec)
		for _, s := range r.Breakdown {
			fmt.Fprintf(w, "| %s | %.1f%% |\n", s.Kind, s.Percent)
		}
	}
}

// WriteDeviceTimes prints, for the results profiled on a device, the device time of each
// kind of work per step, and how much of the step the device was busy: the rest is the
// host's (launching, Go-side work, Gorgonia's machine).
func WriteDeviceTimes(w io.Writer, results []ModelResult) {
	for _, r := range results {
		if len(r.Device) == 0 {
			continue
		}
		var busy float64
		for _, d := range r.Device {
			busy += d.SecondsPerStep
		}
		fmt.Fprintf(w, "\n%v: device time per step (%.1f ms busy of a %.1f ms step: %.0f%%)\n\n| work | calls | ms | share of busy |\n| --- | --- | --- | --- |\n",
			r.Spec, 1e3*busy, 1e3*r.StepSeconds, 100*busy/r.StepSeconds)
		for _, d := range r.Device {
			fmt.Fprintf(w, "| %s | %.0f | %.2f | %.1f%% |\n", d.Kind, d.CallsPerStep, 1e3*d.SecondsPerStep, 100*d.SecondsPerStep/busy)
		}
	}
}
