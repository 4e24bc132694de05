package measure

import "golang.org/x/sys/unix"

// TotalMemory is the machine's physical memory in bytes (sysctl hw.memsize), or 0 when it
// cannot be read.
func TotalMemory() uint64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return n
}
