package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the file a writer of a run folder holds locked.
const lockFile = ".lock"

// Lock makes dir (creating it) this process's to write: a second writer, in this process or
// another, is refused until release. Holding it, Lock removes the temporary files that
// interrupted saves left (atomicfile's), which no reader trusts but which would pile up.
func Lock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := lockExclusive(f); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		if pid := strings.TrimSpace(string(holder)); pid != "" {
			return nil, fmt.Errorf("checkpoint: %s is being written by another gochat (pid %s)", dir, pid)
		}
		return nil, fmt.Errorf("checkpoint: %s is being written by another gochat: %w", dir, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	stale, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*"))
	for _, p := range stale {
		os.Remove(p)
	}
	return func() {
		f.Truncate(0)
		unlock(f)
		f.Close()
	}, nil
}
