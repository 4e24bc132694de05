// Package sandbox runs one model-written Python program, as nanochat's execute_code does
// for HumanEval, and says whether it passed, failed or ran out of time, with its output.
//
// Each program runs in its own python3 process, started from a fresh temporary directory
// that is its working directory, HOME and TMPDIR and is removed afterwards, with stdin
// from /dev/null, an environment of only PATH=/usr/bin:/bin, HOME, TMPDIR and
// LANG=C.UTF-8, and a wall-clock timeout (5 s by default) counted from when the program
// starts, after the interpreter and the prelude. A prelude (prelude.py, run by python3
// -I -B -c) confines the process before the program's first line and then runs it as
// nanochat does: exec in fresh globals (so __name__ is not "__main__"), passing when exec
// returns and failing on any exception, SystemExit included. Only the first 64 KiB of
// stdout and of stderr are kept. The process is a session and process-group leader; the
// whole group is killed with SIGKILL at the timeout and again after a normal exit, so
// children left behind do not survive it.
//
// What is contained, by layer (Result.Contained says which layers each run had):
//
//   - Resource limits, everywhere, set by the prelude as hard limits: address space, data
//     and stack 256 MiB each (nanochat's limit; stack not on macOS, as nanochat), processes
//     and threads of the user (RLIMIT_NPROC, 32; the kernel ignores it for root), file size
//     16 MiB, CPU time the timeout plus two seconds, no core files. A program that allocates
//     gigabytes fails with MemoryError. A program running as root could raise them again
//     but for the seccomp filter.
//   - Namespaces, on Linux where the kernel lets an unprivileged process make them: the
//     program gets its own user, PID, network, IPC and UTS namespaces. Its network has only
//     a loopback device that is down, so it reaches nothing, not even the host's loopback;
//     it can address only its own processes (/proc, not remounted, still lists the host's),
//     and every one of them dies with it. Where the kernel refuses (containers commonly
//     do), the run goes on without them and says so.
//   - Landlock, on Linux 5.13 and later where it is enabled: the program cannot create,
//     write, truncate, remove, rename or link any file outside its directory (it can still
//     write to /dev/null), whoever it runs as, root included. With Landlock ABI 4 (Linux
//     6.7) TCP bind and connect are refused too.
//   - A seccomp filter, on Linux amd64 and arm64: the program cannot start a process or
//     run another program (threads are allowed), open a socket, send a signal, trace or
//     read another process's memory, raise its limits, change a file's mode, owner or
//     extended attributes, mount, make namespaces, use io_uring, bpf or perf events, load
//     modules, change the clock, reboot, or push input into a terminal (TIOCSTI). Refused
//     calls fail with EPERM; a call of another architecture's ABI kills the process.
//   - nanochat's reliability guard: os.kill, os.system, os.fork, os.remove, shutil.rmtree,
//     subprocess.Popen and the rest of its list set to None, and os._exit with them. This
//     only stops accidents: posix.fork and ctypes are still there, so the layers above are
//     the containment.
//
// What is not contained: the program reads whatever the user running it can read (its
// source files, home directory, /proc); it can use the CPU and memory up to its limits for
// the whole timeout; without Landlock it can write anywhere the user can, and as root that
// is everywhere; without both the network namespace and the seccomp filter it can open
// sockets and reach the network; without the seccomp filter, running as root, nothing
// limits how many processes it starts before the timeout, and without both the PID
// namespace and the filter a child that makes its own session escapes the final kill.
// macOS has none of the three Linux layers, and its kernel is reported not to enforce the
// address-space limit (the package has not been measured there); Linux on architectures
// other than amd64 and arm64 has no seccomp filter. An
// interpreter launcher (a pyenv shim, say) may add variables of its own to the environment.
// There is no virtual machine or container boundary: a kernel bug is an escape. It is
// meant for evaluating generated code, not for hostile code.
//
// Runs share nothing: Run may be called from several goroutines at once.
package sandbox

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultMemory    = 256 << 20
	DefaultProcesses = 32
	DefaultFileSize  = 16 << 20
	DefaultOutput    = 64 << 10
)

// startupLimit bounds the time the interpreter and the prelude take before the program
// starts (and its timeout with it); beyond it the run is an error, not a verdict.
const startupLimit = 30 * time.Second

// ErrNoPython is the error of a run without a Python interpreter to run it with.
var ErrNoPython = errors.New("sandbox: no Python interpreter")

// Config is how a program runs; its zero value is nanochat's settings.
type Config struct {
	Python    string        // the interpreter: a path, or a name looked up in PATH; "" is python3
	Timeout   time.Duration // the program's wall-clock time; 0 is DefaultTimeout
	Memory    int64         // bytes of address space, of data and of stack; 0 is DefaultMemory
	Processes int           // RLIMIT_NPROC; 0 is DefaultProcesses
	FileSize  int64         // the largest file it may write, in bytes; 0 is DefaultFileSize
	Output    int           // bytes kept of stdout and of stderr each; 0 is DefaultOutput

	// off turns layers off, for the tests to measure what each one contains.
	off layers
}

// layers are the Linux containment layers.
type layers struct{ namespaces, landlock, seccomp bool }

func (c Config) withDefaults() Config {
	if c.Python == "" {
		c.Python = "python3"
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Memory <= 0 {
		c.Memory = DefaultMemory
	}
	if c.Processes <= 0 {
		c.Processes = DefaultProcesses
	}
	if c.FileSize <= 0 {
		c.FileSize = DefaultFileSize
	}
	if c.Output <= 0 {
		c.Output = DefaultOutput
	}
	return c
}

// Status is a run's verdict.
type Status int

const (
	Passed   Status = iota // the program ran to its end
	Failed                 // it raised an exception, or was killed by a signal or a limit
	TimedOut               // it was still running at the timeout, and was killed
)

// String is the verdict in words: "passed", "failed" or "timed out".
func (s Status) String() string {
	switch s {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case TimedOut:
		return "timed out"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is what a run did.
type Result struct {
	Status         Status
	ExitCode       int // the process's exit status; -1 when a signal ended it
	Stdout, Stderr string
	Truncated      bool          // stdout or stderr was longer than Config.Output
	Elapsed        time.Duration // from the program's start to its end
	Contained      Containment
}

// Containment says which of the Linux layers a run had and, for each one missing, why.
type Containment struct {
	Namespaces bool // its own user, PID, network, IPC and UTS namespaces
	Landlock   bool // changes to the file system confined to its directory
	Seccomp    bool // the system-call filter
	Notes      []string
}

// NetworkBlocked says whether the run could not reach any network: it had its own network
// namespace or the seccomp filter (which refuses every socket).
func (c Containment) NetworkBlocked() bool { return c.Namespaces || c.Seccomp }

// String is "limits" and the layers the run had, then its notes in brackets:
// "limits, namespaces, landlock, seccomp", or "limits only (no …)" with none.
func (c Containment) String() string {
	var on []string
	for _, l := range []struct {
		name string
		on   bool
	}{{"namespaces", c.Namespaces}, {"landlock", c.Landlock}, {"seccomp", c.Seccomp}} {
		if l.on {
			on = append(on, l.name)
		}
	}
	s := "limits only"
	if len(on) > 0 {
		s = "limits, " + strings.Join(on, ", ")
	}
	if len(c.Notes) > 0 {
		s += " (" + strings.Join(c.Notes, "; ") + ")"
	}
	return s
}

// cappedBuffer keeps the first max bytes written to it and drops the rest, so that a
// program printing forever costs no memory; it always accepts the write, so the program
// is never blocked on a full pipe.
type cappedBuffer struct {
	buf       []byte
	max       int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - len(b.buf)
	if len(p) > room {
		b.truncated = true
		b.buf = append(b.buf, p[:max(room, 0)]...)
	} else {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}
