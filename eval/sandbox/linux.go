//go:build linux

package sandbox

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Linux has the namespaces; whether this kernel lets the process make them is found out
// by trying, run by run.
const namespacesSupported = true

// stackLimit says whether RLIMIT_STACK is set.
const stackLimit = true

// namespaceFlags are the namespaces the interpreter gets: its own user namespace (which
// lets an unprivileged process make the others), PIDs, network, IPC and host name.
const namespaceFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS

// procAttr makes the interpreter a session (and process-group) leader, killed if this
// process dies, and, with namespaces, PID 1 of its own namespaces, its user and group
// mapped to this process's own.
func procAttr(namespaces bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if namespaces {
		uid, gid := os.Getuid(), os.Getgid()
		a.Cloneflags = namespaceFlags
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// platformLayers asks the prelude for Landlock and the seccomp filter, those not turned
// off and, for the filter, written for this architecture.
func platformLayers(cfg Config) (landlock bool, filter []byte, notes []string) {
	if cfg.off.landlock {
		notes = append(notes, "landlock off")
	}
	switch {
	case cfg.off.seccomp:
		notes = append(notes, "seccomp off")
	case filterArch == 0:
		notes = append(notes, "no seccomp filter for "+runtime.GOARCH)
	default:
		var err error
		if filter, err = seccompFilter(); err != nil {
			notes = append(notes, "no seccomp: "+err.Error())
		}
	}
	return !cfg.off.landlock, filter, notes
}

// deniedCalls are the system calls the filter refuses on every architecture (archDenied
// adds each architecture's own): running programs, sockets, signals, tracing, raising
// limits, file modes, owners and attributes, mounts and namespaces, io_uring, bpf, perf,
// keys, modules, clocks, swap and reboot.
var deniedCalls = []uint32{
	unix.SYS_EXECVE, unix.SYS_EXECVEAT,
	unix.SYS_SOCKET,
	unix.SYS_KILL, unix.SYS_TKILL, unix.SYS_TGKILL, unix.SYS_RT_SIGQUEUEINFO, unix.SYS_RT_TGSIGQUEUEINFO,
	unix.SYS_PIDFD_SEND_SIGNAL,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_PROCESS_MADVISE,
	unix.SYS_SETRLIMIT,
	unix.SYS_FCHMOD, unix.SYS_FCHMODAT, unix.SYS_FCHMODAT2, unix.SYS_FCHOWN, unix.SYS_FCHOWNAT,
	unix.SYS_SETXATTR, unix.SYS_LSETXATTR, unix.SYS_FSETXATTR, unix.SYS_SETXATTRAT,
	unix.SYS_REMOVEXATTR, unix.SYS_LREMOVEXATTR, unix.SYS_FREMOVEXATTR, unix.SYS_REMOVEXATTRAT,
	unix.SYS_MKNODAT,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT, unix.SYS_MOVE_MOUNT,
	unix.SYS_OPEN_TREE, unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK,
	unix.SYS_MOUNT_SETATTR, unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE,
	unix.SYS_DELETE_MODULE, unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME, unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME,
	unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX, unix.SYS_ACCT, unix.SYS_QUOTACTL,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT, unix.SYS_FANOTIFY_INIT,
}

// Offsets in struct seccomp_data, and the half of a 64-bit argument at an offset (both
// architectures with a filter are little-endian).
const (
	dataNr   = 0
	dataArch = 4
	lowWord  = 0
	highWord = 4
)

// dataArg is the offset of argument i of the call in struct seccomp_data.
func dataArg(i, word uint32) uint32 { return 16 + 8*i + word }

// seccompFilter is the classic BPF program of the filter, 8 bytes an instruction in this
// machine's byte order, as prctl(PR_SET_SECCOMP) takes it:
//
//	a call of another ABI than this architecture's kills the process;
//	clone makes threads only: flags with CLONE_THREAD and without a namespace;
//	clone3 is refused with ENOSYS, so that the C library falls back to clone;
//	prlimit64 only reads limits (its new limit is NULL);
//	ioctl cannot push input into a terminal (TIOCSTI, TIOCLINUX);
//	the deniedCalls and archDenied are refused with EPERM, and every other call allowed.
func seccompFilter() ([]byte, error) {
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	nsFlags := uint32(unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME)
	var a bpf
	a.stmt(ld, dataArch)
	a.jump(jeq, filterArch, "", "kill")
	a.stmt(ld, dataNr)
	if x32Bit != 0 {
		a.jump(jge, x32Bit, "kill", "")
	}
	for _, nr := range append(deniedCalls, archDenied...) {
		a.jump(jeq, nr, "deny", "")
	}
	a.jump(jeq, unix.SYS_CLONE, "clone", "")
	a.jump(jeq, unix.SYS_CLONE3, "enosys", "")
	a.jump(jeq, unix.SYS_PRLIMIT64, "prlimit", "")
	a.jump(jeq, unix.SYS_IOCTL, "ioctl", "")
	a.stmt(ret, unix.SECCOMP_RET_ALLOW)

	a.label("clone")
	a.stmt(ld, dataArg(0, lowWord))
	a.jump(jset, nsFlags, "deny", "")
	a.jump(jset, unix.CLONE_THREAD, "allow", "deny")

	a.label("prlimit")
	a.stmt(ld, dataArg(2, lowWord))
	a.jump(jeq, 0, "", "deny")
	a.stmt(ld, dataArg(2, highWord))
	a.jump(jeq, 0, "allow", "deny")

	a.label("ioctl")
	a.stmt(ld, dataArg(1, lowWord))
	a.jump(jeq, unix.TIOCSTI, "deny", "")
	a.jump(jeq, unix.TIOCLINUX, "deny", "allow")

	a.label("allow")
	a.stmt(ret, unix.SECCOMP_RET_ALLOW)
	a.label("deny")
	a.stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	a.label("enosys")
	a.stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	a.label("kill")
	a.stmt(ret, unix.SECCOMP_RET_KILL_PROCESS)
	return a.assemble()
}

// bpf assembles a classic BPF program whose conditional jumps go forward to labels.
type bpf struct {
	prog   []unix.SockFilter
	jumps  map[int][2]string // instruction → its true and false targets ("" is the next one)
	labels map[string]int
}

func (a *bpf) stmt(code uint16, k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: code, K: k})
}

func (a *bpf) jump(code uint16, k uint32, ifTrue, ifFalse string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.prog)] = [2]string{ifTrue, ifFalse}
	a.stmt(code, k)
}

func (a *bpf) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.prog)
}

// assemble resolves the jumps and encodes the program.
func (a *bpf) assemble() ([]byte, error) {
	offset := func(at int, target string) (uint8, error) {
		if target == "" {
			return 0, nil
		}
		to, ok := a.labels[target]
		if d := to - at - 1; ok && d >= 0 && d <= 255 {
			return uint8(d), nil
		}
		return 0, fmt.Errorf("the filter's jump from %d to %q is out of reach", at, target)
	}
	var err error
	for at, targets := range a.jumps {
		if a.prog[at].Jt, err = offset(at, targets[0]); err != nil {
			return nil, err
		}
		if a.prog[at].Jf, err = offset(at, targets[1]); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, 8*len(a.prog))
	for _, in := range a.prog {
		out = binary.NativeEndian.AppendUint16(out, in.Code)
		out = append(out, in.Jt, in.Jf)
		out = binary.NativeEndian.AppendUint32(out, in.K)
	}
	return out, nil
}
