//go:build !amd64

package measure

// flopsPerCycle is what one core does per cycle with 128-bit vectors (NEON on arm64) on
// four FMA units, as the widest arm64 cores (Apple's, Neoverse V1) have: 4 units × 2 FLOPs
// × 4 float32 lanes.
func flopsPerCycle() (int, string) { return 32, "4 × 128-bit FMA" }
