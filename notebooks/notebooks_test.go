package notebooks_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gochat/notebooks/nbrun"
)

// TestNotebooks builds every notebook of this folder as the gophernotes kernel would run
// it (nbrun), in one go build, and runs each in order at its small size
// (GOCHAT_NOTEBOOK_SMALL=1), sharing one GOCHAT_NOTEBOOK_DIR so that a notebook finds what
// an earlier one saved. It fails on a compile error, a panic, a run past its time or an
// expected output ("// expect: TEXT") that does not appear.
//
// GOCHAT_UPDATE_NOTEBOOK_IMAGES=1 runs them at full size instead, with no time limit, and
// copies the images they show to images/<notebook>-<n>.png, the README's.
func TestNotebooks(t *testing.T) {
	paths, err := filepath.Glob("*.ipynb")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no notebooks here (%v)", err)
	}
	var nbs []*nbrun.Notebook
	for _, p := range paths {
		nb, err := nbrun.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(nb.Expect) == 0 {
			t.Errorf("%s expects no output: give it // expect: lines", p)
		}
		nbs = append(nbs, nb)
	}
	work, err := os.MkdirTemp(".", "_run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	bins, err := nbrun.Build("..", work, nbs)
	if err != nil {
		t.Fatal(err)
	}
	update := os.Getenv("GOCHAT_UPDATE_NOTEBOOK_IMAGES") != ""
	shared := t.TempDir()
	for i, nb := range nbs {
		ok := t.Run(nb.Name, func(t *testing.T) {
			limit := 90 * time.Second
			if update {
				limit = time.Hour
			}
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			images := t.TempDir()
			cmd := exec.CommandContext(ctx, bins[i])
			cmd.Env = append(os.Environ(), "GOCHAT_NOTEBOOK_OUT="+images, "GOCHAT_NOTEBOOK_DIR="+shared)
			if !update {
				cmd.Env = append(cmd.Env, "GOCHAT_NOTEBOOK_SMALL=1")
			}
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v after %v\n%s", nb.Name, err, time.Since(start).Round(time.Millisecond), out)
			}
			if err := nb.Check(out); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			t.Logf("%s ran in %v:\n%s", nb.Name, time.Since(start).Round(time.Millisecond), out)
			if update {
				if err := copyImages(images, strings.TrimSuffix(nb.Name, ".ipynb")); err != nil {
					t.Fatal(err)
				}
			}
		})
		if !ok {
			break // the notebooks after it may need what it saves
		}
	}
}

// copyImages copies the images a notebook showed (1.png, 2.png, …) to images/stem-n.png.
func copyImages(dir, stem string) error {
	shown, err := filepath.Glob(filepath.Join(dir, "*.png"))
	if err != nil {
		return err
	}
	for _, src := range shown {
		dst := filepath.Join("images", fmt.Sprintf("%s-%s", stem, filepath.Base(src)))
		if err := copyFile(src, dst); err != nil {
			return fmt.Errorf("copying %s's image: %w", stem, err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
