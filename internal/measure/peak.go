package measure

import (
	"bufio"
	"fmt"
	"gochat/backend"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Peak is the rate MFU is a share of: FLOPS (floating-point operations per second) and
// what that figure is, named in a run's output.
type Peak struct {
	FLOPS float64
	What  string
}

// MFU is the share of the peak, in percent, that a rate of flopsPerSecond is; 0 when the
// peak is unknown.
func (p Peak) MFU(flopsPerSecond float64) float64 {
	if p.FLOPS <= 0 {
		return 0
	}
	return 100 * flopsPerSecond / p.FLOPS
}

// NominalPeaker is an engine that knows the nominal peak of its processor: a GPU's, from
// its data sheet, as nanochat takes an H100's bf16 peak for its MFU.
type NominalPeaker interface {
	NominalPeak() (Peak, bool)
}

// PeakOf is the peak MFU is measured against on e: the engine's nominal peak when it knows
// one; otherwise the higher of the processor's nominal FMA peak (cores × clock × FLOPs per
// cycle of its widest vector FMA, when the clock can be read) and the best SGEMM rate
// measured on e. A run's model FLOPs include work slower than a matrix product, so neither
// can be beaten by the run itself, even when the measurement ran on a busy machine: MFU
// stays at most 100%.
func PeakOf(e backend.Gemm) Peak {
	if n, ok := e.(NominalPeaker); ok {
		if p, ok := n.NominalPeak(); ok {
			return p
		}
	}
	gflops := GemmGFLOPs(e, false, 1024, 768, 3072, time.Second)
	measured := Peak{FLOPS: gflops * 1e9, What: fmt.Sprintf("the best SGEMM rate measured here, %.1f GFLOP/s at 1024×768×3072", gflops)}
	if nominal, ok := CPUPeak(); ok && nominal.FLOPS >= measured.FLOPS {
		return nominal
	}
	return measured
}

// CPUPeak is the nominal peak of the processors this process may use: the cores Go runs on
// × their highest clock × the FLOPs per cycle of their widest fused multiply-add (two FMA
// units assumed, the most any of them has). It is unknown where the clock cannot be read.
func CPUPeak() (Peak, bool) {
	ghz := maxClockGHz()
	if ghz <= 0 {
		return Peak{}, false
	}
	cores := min(runtime.NumCPU(), runtime.GOMAXPROCS(0))
	perCycle, isa := flopsPerCycle()
	return Peak{FLOPS: float64(cores) * ghz * 1e9 * float64(perCycle),
		What: fmt.Sprintf("the nominal FMA peak, %d cores × %.2f GHz × %d FLOP/cycle (%s)", cores, ghz, perCycle, isa)}, true
}

// maxClockGHz is the highest clock of the processors that Linux reports: cpufreq's maximum
// where the kernel has it, else the highest "cpu MHz" of /proc/cpuinfo (a virtual
// machine's nominal clock). 0 where neither is there.
func maxClockGHz() float64 {
	var best float64
	paths, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq")
	for _, p := range paths {
		if raw, err := os.ReadFile(p); err == nil {
			if khz, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64); err == nil {
				best = max(best, khz/1e6)
			}
		}
	}
	if best > 0 {
		return best
	}
	for _, v := range procValues("/proc/cpuinfo", "cpu MHz") {
		if mhz, err := strconv.ParseFloat(v, 64); err == nil {
			best = max(best, mhz/1e3)
		}
	}
	return best
}

// procValues are the values of the "key: value" lines of a /proc file whose key is key,
// trimmed; none where the file cannot be read.
func procValues(path, key string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
