package measure

import "golang.org/x/sys/cpu"

// flopsPerCycle is what one core's two FMA units do per cycle with the widest vectors it
// has: 2 units × 2 FLOPs × the float32 lanes.
func flopsPerCycle() (int, string) {
	switch x := cpu.X86; {
	case x.HasAVX512F:
		return 64, "AVX-512"
	case x.HasAVX2 && x.HasFMA:
		return 32, "AVX2 FMA"
	case x.HasAVX:
		return 16, "AVX"
	}
	return 8, "SSE"
}
