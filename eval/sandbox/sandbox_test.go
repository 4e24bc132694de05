//go:build unix

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run real python3 processes, one at a time (started is shared).

// modes are the layer sets the tests compare: everything this machine allows, the
// fallback of a kernel that refuses namespaces, and the limits and process group alone.
var modes = []struct {
	name string
	off  layers
}{
	{"all layers", layers{}},
	{"no namespaces", layers{namespaces: true}},
	{"limits only", layers{namespaces: true, landlock: true, seccomp: true}},
}

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skipf("skipped: python3 is not installed (%v), and the sandbox's tests run real programs", err)
	}
}

// runWatched runs program and returns its result and the processes of the run still
// alive after Run returned: those of its process group or session, and those of its PID
// namespace when it had one.
func runWatched(t *testing.T, program string, cfg Config) (Result, []string) {
	t.Helper()
	var pid int
	var pidNS string
	started = func(p int) {
		pid = p
		pidNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p))
	}
	defer func() { started = nil }()
	res, err := Run(context.Background(), program, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if own, _ := os.Readlink("/proc/self/ns/pid"); pidNS == own {
		pidNS = "" // the run shared this process's namespace
	}
	return res, leftovers(pid, pidNS)
}

// leftovers lists the live processes of the group, the session or the PID namespace of
// pid, giving the killed ones a moment to be reaped.
func leftovers(pid int, pidNS string) []string {
	var alive []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		alive = alive[:0]
		entries, err := os.ReadDir("/proc")
		if err != nil { // no /proc (macOS): ask whether the group has any process left
			if syscall.Kill(-pid, 0) == nil {
				alive = append(alive, fmt.Sprintf("process group %d", pid))
			}
		}
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			if err != nil {
				continue // gone meanwhile
			}
			// Fields after "(comm) ": state ppid pgrp session …
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(fields) < 4 || fields[0] == "Z" {
				continue
			}
			ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p))
			if fields[2] == strconv.Itoa(pid) || fields[3] == strconv.Itoa(pid) || (pidNS != "" && ns == pidNS) {
				alive = append(alive, fmt.Sprintf("pid %d (%s)", p, strings.TrimSpace(string(stat[:strings.IndexByte(string(stat), ')')+1]))))
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
	}
}

func run(t *testing.T, program string, cfg Config) Result {
	t.Helper()
	res, left := runWatched(t, program, cfg)
	if len(left) > 0 {
		t.Errorf("processes of the run survived it: %v", left)
	}
	return res
}

func TestVerdicts(t *testing.T) {
	needPython(t)
	for _, c := range []struct {
		name, program string
		want          Status
		stderr        string // a part of stderr
	}{
		{"passing", "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('ok')\n", Passed, ""},
		{"failing assertion", "assert 1 + 1 == 3, 'arithmetic'\n", Failed, "AssertionError: arithmetic"},
		{"syntax error", "def f(:\n    pass\n", Failed, "SyntaxError"},
		{"exception", "[][1]\n", Failed, "IndexError"},
		// nanochat counts any exception a failure, SystemExit(0) too, and execs the program
		// in fresh globals, where __name__ is not "__main__".
		{"sys.exit(0)", "import sys\nsys.exit(0)\n", Failed, "SystemExit"},
		{"os._exit(0)", "import os\nos._exit(0)\n", Failed, "TypeError"},
		{"not __main__", "assert __name__ != '__main__'\n", Passed, ""},
		{"stdin is empty", "input()\n", Failed, "EOFError"},
		{"threads", "import threading\nthreading.stack_size(1 << 20)\nout = []\n" +
			"t = threading.Thread(target=out.append, args=(1,))\nt.start()\nt.join()\nassert out == [1]\n", Passed, ""},
	} {
		res := run(t, c.program, Config{Timeout: 10 * time.Second})
		if res.Status != c.want || !strings.Contains(res.Stderr, c.stderr) {
			t.Errorf("%s: %v (exit %d), stderr %q; want %v with %q", c.name, res.Status, res.ExitCode, res.Stderr, c.want, c.stderr)
		}
		if c.name == "passing" && res.Stdout != "ok\n" {
			t.Errorf("passing: stdout %q", res.Stdout)
		}
		if c.want == Failed && strings.Contains(res.Stderr, "prelude") {
			t.Errorf("%s: the traceback shows the prelude: %q", c.name, res.Stderr)
		}
	}
}

// TestTimeout: a program that never ends, and a child it forks where it can, are killed
// at the timeout, and nothing of them is left.
func TestTimeout(t *testing.T) {
	needPython(t)
	program := "import posix\ntry:\n    posix.fork()\nexcept OSError:\n    pass\nwhile True:\n    pass\n"
	for _, m := range []int{0, 2} {
		res := run(t, program, Config{Timeout: 2 * time.Second, off: modes[m].off})
		if res.Status != TimedOut || res.Elapsed < 2*time.Second {
			t.Errorf("%s: %v after %v; want timed out after 2 s at least", modes[m].name, res.Status, res.Elapsed)
		}
	}
}

// TestForkBomb: forty forks whose children sleep. The seccomp filter refuses the first
// (RLIMIT_NPROC would stop an unprivileged user at 32; root it does not stop); whatever
// was forked is killed with the run.
func TestForkBomb(t *testing.T) {
	needPython(t)
	program := "import posix, time\nfor i in range(40):\n    if posix.fork() == 0:\n" +
		"        time.sleep(60)\n        posix._exit(0)\nprint('forked 40')\n"
	for _, m := range modes {
		res := run(t, program, Config{off: m.off})
		switch {
		case res.Contained.Seccomp:
			if res.Status != Failed || !strings.Contains(res.Stderr, "PermissionError") {
				t.Errorf("%s: %v, stderr %q; want the first fork refused", m.name, res.Status, res.Stderr)
			}
		case os.Getuid() != 0:
			if res.Status != Failed {
				t.Errorf("%s: %v, stdout %q; want RLIMIT_NPROC to stop it", m.name, res.Status, res.Stdout)
			}
		default:
			t.Logf("%s, as root (no RLIMIT_NPROC): %v, %q; the forty children were killed with it", m.name, res.Status, res.Stdout)
		}
	}
}

func TestMemory(t *testing.T) {
	needPython(t)
	program := "small = bytearray(64 << 20)\nprint(len(small))\nbig = bytearray(4 << 30)\n"
	for _, m := range modes {
		res := run(t, program, Config{off: m.off})
		if res.Status != Failed || res.Stdout != "67108864\n" || !strings.Contains(res.Stderr, "MemoryError") {
			t.Errorf("%s: %v, stdout %q, stderr %q; want 64 MiB allocated and 4 GiB refused", m.name, res.Status, res.Stdout, res.Stderr)
		}
	}
}

// TestEnvironment: nothing of this process's environment reaches the program.
func TestEnvironment(t *testing.T) {
	needPython(t)
	t.Setenv("GOCHAT_SANDBOX_SECRET", "hunter2")
	program := "import os\nfor k, v in sorted(os.environ.items()):\n    print(k + '=' + v)\n"
	res := run(t, program, Config{})
	if res.Status != Passed {
		t.Fatalf("%v: %s", res.Status, res.Stderr)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	if strings.Contains(res.Stdout, "hunter2") {
		t.Errorf("the secret reached the program: %s", res.Stdout)
	}
	home := env["HOME"]
	if !strings.Contains(home, "gochat-sandbox-") || env["TMPDIR"] != home || env["LANG"] != "C.UTF-8" ||
		!strings.HasSuffix(env["PATH"], "/usr/bin:/bin") {
		t.Errorf("environment %v", env)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the program's directory %s is still there (%v)", home, err)
	}
}

// TestFileSystem: the program writes in its own directory and to /dev/null; with Landlock
// it can neither write nor remove a file in a directory of the test's.
func TestFileSystem(t *testing.T) {
	needPython(t)
	for _, m := range modes {
		outside := t.TempDir()
		keep := filepath.Join(outside, "keep.txt")
		if err := os.WriteFile(keep, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		program := fmt.Sprintf(`import posix
open("inside.txt", "w").write("x")
open("/dev/null", "w").write("x")
for what, act in (("write", lambda: open(%q, "w").write("x")), ("remove", lambda: posix.unlink(%q))):
    try:
        act()
        print(what, "done")
    except PermissionError:
        print(what, "refused")
`, filepath.Join(outside, "escaped.txt"), keep)
		res := run(t, program, Config{off: m.off})
		if res.Status != Passed {
			t.Fatalf("%s: %v: %s", m.name, res.Status, res.Stderr)
		}
		_, wrote := os.Stat(filepath.Join(outside, "escaped.txt"))
		_, removed := os.Stat(keep)
		if res.Contained.Landlock {
			if res.Stdout != "write refused\nremove refused\n" || wrote == nil || removed != nil {
				t.Errorf("%s: with Landlock the program printed %q", m.name, res.Stdout)
			}
		} else {
			t.Logf("%s, without Landlock: %q", m.name, res.Stdout)
		}
	}
}

// TestNetwork: a connection to a listener of the test's on the loopback fails when the run
// has its own network namespace or the seccomp filter.
func TestNetwork(t *testing.T) {
	needPython(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	program := fmt.Sprintf("import socket\nsocket.create_connection(('127.0.0.1', %d), timeout=2)\nprint('connected')\n",
		l.Addr().(*net.TCPAddr).Port)
	for _, m := range append(modes, struct {
		name string
		off  layers
	}{"namespaces alone", layers{landlock: true, seccomp: true}}) {
		res := run(t, program, Config{off: m.off})
		switch {
		case res.Contained.NetworkBlocked():
			if res.Status != Failed || strings.Contains(res.Stdout, "connected") {
				t.Errorf("%s (%v): %v, %q; want the connection refused", m.name, res.Contained, res.Status, res.Stdout)
			} else {
				t.Logf("%s: %s", m.name, lastLine([]byte(res.Stderr)))
			}
		case res.Contained.Landlock:
			t.Logf("%s, Landlock only: %v, %s", m.name, res.Status, lastLine([]byte(res.Stderr+res.Stdout)))
		default:
			t.Logf("%s (%v): %v, %q: nothing blocks the network, as the package says", m.name, res.Contained, res.Status, res.Stdout)
		}
	}
}

// TestSeccomp: what the filter refuses, refused; reading limits still works.
func TestSeccomp(t *testing.T) {
	needPython(t)
	program := `import posix, sys
del sys.modules["resource"]
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
assert soft == hard == 256 << 20, (soft, hard)
for what, act in (("exec", lambda: posix.execv("/bin/true", ["true"])),
                  ("signal", lambda: posix.kill(posix.getpid(), 0)),
                  ("chmod", lambda: posix.chmod("program.py", 0o777)),
                  ("setrlimit", lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 20, 1 << 20)))):
    try:
        act()
        print(what, "done")
    except (PermissionError, ValueError):  # CPython's setrlimit turns EPERM into ValueError
        print(what, "refused")
`
	res := run(t, program, Config{})
	if !res.Contained.Seccomp {
		t.Skipf("no seccomp filter here: %v", res.Contained)
	}
	if res.Status != Passed || res.Stdout != "exec refused\nsignal refused\nchmod refused\nsetrlimit refused\n" {
		t.Errorf("%v: stdout %q, stderr %q", res.Status, res.Stdout, res.Stderr)
	}
}

func TestOutputCap(t *testing.T) {
	needPython(t)
	res := run(t, "print('x' * 100000)\n", Config{Output: 1000})
	if res.Status != Passed || !res.Truncated || res.Stdout != strings.Repeat("x", 1000) {
		t.Errorf("%v, truncated %v, %d bytes", res.Status, res.Truncated, len(res.Stdout))
	}
	res = run(t, "while True:\n    print('y' * 1000)\n", Config{Output: 1000, Timeout: time.Second})
	if res.Status != TimedOut || !res.Truncated || len(res.Stdout) != 1000 {
		t.Errorf("printing forever: %v, truncated %v, %d bytes", res.Status, res.Truncated, len(res.Stdout))
	}
}

// TestErrors: what keeps a program from running is an error with one clear line, not a
// verdict.
func TestErrors(t *testing.T) {
	_, err := Run(context.Background(), "pass", Config{Python: "no-such-python3"})
	if !errors.Is(err, ErrNoPython) || strings.Contains(err.Error(), "\n") {
		t.Errorf("a missing interpreter: %v", err)
	}
	if notPython, lookErr := exec.LookPath("false"); lookErr == nil {
		_, err = Run(context.Background(), "pass", Config{Python: notPython})
		if err == nil || !strings.Contains(err.Error(), "ended before the program started") {
			t.Errorf("an interpreter that is not one: %v", err)
		}
	}
	needPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Run(ctx, "while True:\n    pass\n", Config{Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a cancelled run: %v", err)
	}
}
