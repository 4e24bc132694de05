//go:build linux

package cudabackend

import "testing"

func TestNominalPeak(t *testing.T) {
	for _, c := range []struct {
		device string
		prec   Precision
		tflop  float64
	}{
		{"NVIDIA H100 80GB HBM3", BF16, 989.4},
		{"NVIDIA H100 80GB HBM3", TF32, 494.7},
		{"NVIDIA H100 PCIe", FP32, 51},
		{"NVIDIA H200", BF16, 989.4},
		{"NVIDIA A100-SXM4-40GB", TF32, 156},
	} {
		e := &Engine{b: &BLAS{device: c.device, prec: c.prec}}
		p, ok := e.NominalPeak()
		if !ok || p.FLOPS != c.tflop*1e12 || p.What == "" {
			t.Errorf("%s %s: %+v, %v; want %g TFLOP/s", c.device, c.prec, p, ok, c.tflop)
		}
	}
	if p, ok := (&Engine{b: &BLAS{device: "NVIDIA GeForce GT 710"}}).NominalPeak(); ok {
		t.Errorf("an unknown GPU has a nominal peak: %+v", p)
	}
}
