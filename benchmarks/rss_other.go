//go:build !(linux || darwin)

package benchmarks

// PeakRSS is not measured on this system.
func PeakRSS() uint64 { return 0 }
