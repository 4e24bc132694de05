//go:build linux && arm64

package sandbox

import "golang.org/x/sys/unix"

// filterArch is the audit architecture of the calls the filter judges; arm64 has no
// second ABI to refuse.
const (
	filterArch = unix.AUDIT_ARCH_AARCH64
	x32Bit     = 0
)

// archDenied are the calls arm64 has beside the common ones: none.
var archDenied []uint32
