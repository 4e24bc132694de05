package measure_test

import (
	"strings"
	"testing"

	"gochat/cpubackend"
	"gochat/internal/measure"
)

// sheet is an engine that knows its nominal peak.
type sheet struct{ *cpubackend.Engine }

func (sheet) NominalPeak() (measure.Peak, bool) {
	return measure.Peak{FLOPS: 1e15, What: "a data sheet"}, true
}

func TestPeakOf(t *testing.T) {
	cpu := cpubackend.New(cpubackend.Gonum{})
	p := measure.PeakOf(cpu)
	measured := measure.GemmGFLOPs(cpu, false, 1024, 768, 3072, 0) * 1e9
	if p.FLOPS < measured || p.What == "" {
		t.Errorf("the peak %+v is below the %g FLOP/s measured", p, measured)
	}
	if nominal, ok := measure.CPUPeak(); ok && (p.FLOPS < nominal.FLOPS || !strings.Contains(nominal.What, "GHz")) {
		t.Errorf("the peak %+v is below the nominal %+v", p, nominal)
	}
	if p := measure.PeakOf(sheet{cpu}); p.FLOPS != 1e15 || p.What != "a data sheet" {
		t.Errorf("an engine's nominal peak is not taken: %+v", p)
	}
	if got := (measure.Peak{FLOPS: 200}).MFU(50); got != 25 {
		t.Errorf("MFU of 50 over 200 = %g%%, want 25%%", got)
	}
	if got := (measure.Peak{}).MFU(50); got != 0 {
		t.Errorf("MFU without a peak = %g", got)
	}
}
