//go:build linux

package cudabackend

import (
	"fmt"
	"strings"

	"gochat/internal/measure"
)

// dataSheet is a GPU's dense peak in TFLOP/s for each precision, from NVIDIA's data sheets.
type dataSheet struct {
	name  string // matched as a substring of the device's name, first match wins
	tflop [3]float64
}

// sheets lists the GPUs gochat knows, fp32 / TF32 / bf16 (nanochat's MFU uses the H100's
// 989 bf16 TFLOP/s).
var sheets = []dataSheet{
	{"H100 PCIe", [3]float64{51, 378, 756}},
	{"H100", [3]float64{67, 494.7, 989.4}},
	{"H200", [3]float64{67, 494.7, 989.4}},
	{"A100", [3]float64{19.5, 156, 312}},
	{"L40S", [3]float64{91.6, 183, 362}},
}

// NominalPeak implements measure.NominalPeaker: the data-sheet peak of the GPU in the
// engine's precision, for the GPUs in sheets.
func (e *Engine) NominalPeak() (measure.Peak, bool) {
	for _, s := range sheets {
		if strings.Contains(e.b.device, s.name) {
			t := s.tflop[e.b.prec]
			return measure.Peak{FLOPS: t * 1e12, What: fmt.Sprintf("the %s's dense %s peak, %.0f TFLOP/s", s.name, e.b.prec, t)}, true
		}
	}
	return measure.Peak{}, false
}
