// Package golden finds the golden cases, outputs of nanochat's own code that gochat's tests
// match: those committed under testdata/golden and, when GOCHAT_GOLDEN_DIR is set, those a
// check brings there (other head counts, depths, vocabularies).
package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Cases are the case folders, known by a file named marker that each holds: builtin or
// its subfolders that hold one, and GOCHAT_GOLDEN_DIR or its subfolders that do; as
// absolute paths, in order, without repeats. A folder that cannot be read, or no case at
// all, is an error.
func Cases(builtin, marker string) ([]string, error) {
	roots := []string{builtin}
	if extra := os.Getenv("GOCHAT_GOLDEN_DIR"); extra != "" {
		roots = append(roots, extra)
	}
	var cases []string
	for _, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			return nil, fmt.Errorf("golden cases: %w", err)
		}
		dirs := []string{root}
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(root, e.Name()))
			}
		}
		for _, dir := range dirs {
			if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
				continue
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(cases, abs) {
				cases = append(cases, abs)
			}
		}
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("golden cases: no folder holding %s under %v", marker, roots)
	}
	return cases, nil
}
