// Package atomicfile writes files so that a reader never sees a partial one.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write creates path through write: the content goes to a temporary file beside it,
// which is synced and renamed over path only if write succeeds. On failure nothing is left.
func Write(path string, write func(*os.File) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes files only their owner can read
		f.Close()
		os.Remove(f.Name())
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
