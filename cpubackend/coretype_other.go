//go:build !amd64

package cpubackend

// openblasCoreType leaves OpenBLAS's own detection alone off x86.
func openblasCoreType() string { return "" }
