package cpubackend

import "golang.org/x/sys/cpu"

// openblasCoreType names the OpenBLAS kernels this processor can run, from its instruction
// set. OpenBLAS detects this itself from the CPU model, but a virtual machine that hides the
// model makes it fall back to its oldest kernels: on a 16-core Sapphire Rapids VM that
// reports "Intel(R) Xeon(R) Processor", it chose Prescott and multiplied at 240 GFLOP/s,
// against 1,200–1,450 with the AVX-512 kernels (measured with `gochat bench sgemm`).
func openblasCoreType() string {
	x := cpu.X86
	switch {
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL && x.HasAVX512CD && x.HasAVX512BF16:
		return "Cooperlake"
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL && x.HasAVX512CD:
		return "SkylakeX"
	case x.HasAVX2 && x.HasFMA:
		return "Haswell"
	}
	return ""
}
