//go:build unix && !linux

package sandbox

import (
	"runtime"
	"syscall"
)

// Outside Linux there are no namespaces, Landlock or seccomp: the limits and the process
// group are the containment.
const namespacesSupported = false

// stackLimit says whether RLIMIT_STACK is set: not on macOS, as nanochat.
var stackLimit = runtime.GOOS != "darwin"

// procAttr makes the interpreter a session (and process-group) leader.
func procAttr(bool) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func platformLayers(Config) (landlock bool, filter []byte, notes []string) {
	return false, nil, []string{"no namespaces, Landlock or seccomp on " + runtime.GOOS}
}
