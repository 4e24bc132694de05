//go:build linux && !amd64 && !arm64

package sandbox

// There is no filter for this architecture (its system-call numbers and audit architecture
// are not written down here): filterArch 0 says so.
const (
	filterArch = 0
	x32Bit     = 0
)

var archDenied []uint32
