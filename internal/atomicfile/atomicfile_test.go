package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteLeavesWholeFilesOrNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := Write(path, func(f *os.File) error { _, err := f.WriteString("first"); return err }); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("disk full")
	err := Write(path, func(f *os.File) error { f.WriteString("half of the sec"); return failed })
	if !errors.Is(err, failed) {
		t.Fatalf("error %v, want it to wrap the writer's", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("a failed write changed the file to %q", got)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", info.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files left in the folder, want 1", len(entries))
	}
	if err := Write(filepath.Join(dir, "missing", "f"), func(*os.File) error { return nil }); err == nil {
		t.Error("wrote into a missing folder")
	}
}
