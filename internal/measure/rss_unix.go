//go:build linux || darwin

package measure

import (
	"runtime"
	"syscall"
)

// PeakRSS is the process's peak resident set size in bytes.
func PeakRSS() uint64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return uint64(ru.Maxrss) // bytes on macOS
	}
	return uint64(ru.Maxrss) * 1024 // kilobytes on Linux
}
