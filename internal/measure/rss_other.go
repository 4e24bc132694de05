//go:build !(linux || darwin)

package measure

// PeakRSS is not measured on this system.
func PeakRSS() uint64 { return 0 }
