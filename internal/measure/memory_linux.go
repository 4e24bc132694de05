package measure

import (
	"strconv"
	"strings"
)

// TotalMemory is the machine's physical memory in bytes (MemTotal of /proc/meminfo), or 0
// when it cannot be read.
func TotalMemory() uint64 {
	for _, v := range procValues("/proc/meminfo", "MemTotal") {
		if kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64); err == nil {
			return kb << 10
		}
	}
	return 0
}
