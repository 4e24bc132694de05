//go:build linux && amd64

package sandbox

import "golang.org/x/sys/unix"

// filterArch is the audit architecture of the calls the filter judges; x32Bit marks the
// x32 ABI's calls, which the filter does not judge and so refuses by killing the process.
const (
	filterArch = unix.AUDIT_ARCH_X86_64
	x32Bit     = 0x40000000
)

// archDenied are the calls amd64 has beside the common ones.
var archDenied = []uint32{
	unix.SYS_FORK, unix.SYS_VFORK, unix.SYS_CHMOD, unix.SYS_CHOWN, unix.SYS_LCHOWN, unix.SYS_MKNOD,
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_USELIB,
}
