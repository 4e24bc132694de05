//go:build unix

package checkpoint

import (
	"os"
	"syscall"
)

// lockExclusive takes f's advisory lock, or fails at once when another holds it. The lock
// goes with the open file: a process that dies releases it.
func lockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

func unlock(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
