package eval

import (
	"archive/zip"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gochat/loader"
)

// BundleURL serves nanochat's eval bundle, about 162 MB zipped: a folder eval_bundle/
// holding CORE's tasks (core.yaml), their random baselines (eval_meta_data.csv) and
// their data (eval_data/).
const BundleURL = "https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip"

// The bounds on what a bundle's zip may unpack to: its bytes in all and its entries.
const (
	maxBundleBytes   = 4 << 30
	maxBundleEntries = 100_000
)

// DownloadBundle fetches the eval bundle zipped at url (BundleURL when empty) into dir:
// the zip is fetched beside dir (dir+".zip", resumed after a cut, checked to be a readable
// zip holding core.yaml and eval_meta_data.csv before it takes that name), unpacked into
// dir+".partial" and renamed to dir only once whole, so a folder at dir is always a
// complete bundle; the zip is then removed. Entries that would land outside the folder,
// links, and zips unpacking past maxBundleBytes are refused. A bundle already at dir is
// kept as it is.
func DownloadBundle(ctx context.Context, dir, url string, opt loader.DownloadOptions) error {
	if bundleAt(dir) {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s exists without an eval bundle's core.yaml and eval_meta_data.csv; move it away or choose another folder", dir)
	}
	zipPath := dir + ".zip"
	check := func(path string) error {
		r, _, err := openBundleZip(path, maxBundleBytes)
		if err != nil {
			return err
		}
		return r.Close()
	}
	if err := loader.Fetch(ctx, []loader.Remote{{URL: cmp.Or(url, BundleURL), Path: zipPath, Check: check}}, opt); err != nil {
		return fmt.Errorf("eval bundle: %w", err)
	}
	partial := dir + ".partial"
	if err := os.RemoveAll(partial); err != nil { // what an interrupted unpacking left
		return err
	}
	if err := unpackBundle(ctx, zipPath, partial); err != nil {
		os.RemoveAll(partial)
		return fmt.Errorf("eval bundle %s: %w", zipPath, err)
	}
	if err := os.Rename(partial, dir); err != nil {
		return err
	}
	return os.Remove(zipPath)
}

// bundleAt says whether dir holds a bundle's core.yaml and eval_meta_data.csv.
func bundleAt(dir string) bool {
	for _, name := range []string{"core.yaml", "eval_meta_data.csv"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || !info.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// openBundleZip opens a bundle's zip and checks it: every entry a plain file or folder whose
// name stays inside the zip, limit bytes unpacked at most, and a folder (the zip's top or
// one inside it, nanochat's eval_bundle/) holding core.yaml and eval_meta_data.csv. It
// returns that folder's prefix in the entries' names ("eval_bundle/").
func openBundleZip(zipPath string, limit uint64) (*zip.ReadCloser, string, error) {
	r, err := zip.OpenReader(zipPath)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // an insecure name is named below
		return nil, "", fmt.Errorf("not a readable zip: %w", err)
	}
	fail := func(format string, args ...any) (*zip.ReadCloser, string, error) {
		r.Close()
		return nil, "", fmt.Errorf(format, args...)
	}
	if len(r.File) > maxBundleEntries {
		return fail("%d entries; a bundle has %d at most", len(r.File), maxBundleEntries)
	}
	var total uint64
	root, found := "", false
	for _, f := range r.File {
		if !localName(f.Name) {
			return fail("the entry %q would land outside the bundle's folder", f.Name)
		}
		if mode := f.Mode(); !mode.IsRegular() && !mode.IsDir() {
			return fail("the entry %q is a link or special file, not a plain file or folder", f.Name)
		}
		if total += f.UncompressedSize64; total > limit || f.UncompressedSize64 > limit {
			return fail("unpacks to more than %d bytes", limit)
		}
		if dir, name := path.Split(f.Name); name == "core.yaml" && (!found || len(dir) < len(root)) {
			root, found = dir, true
		}
	}
	if !found || !hasEntry(r, root+"eval_meta_data.csv") {
		return fail("no folder of it holds core.yaml and eval_meta_data.csv: not an eval bundle")
	}
	return r, root, nil
}

// localName says whether a zip entry's name is a relative path that stays where it is
// unpacked: no leading slash, no "..", no backslash or drive letter.
func localName(name string) bool {
	return !strings.Contains(name, `\`) && filepath.IsLocal(filepath.FromSlash(strings.TrimSuffix(name, "/")))
}

func hasEntry(r *zip.ReadCloser, name string) bool {
	for _, f := range r.File {
		if f.Name == name && !f.Mode().IsDir() {
			return true
		}
	}
	return false
}

// unpackBundle unpacks the bundle folder of the zip at zipPath into dest, a new folder;
// entries outside that folder (say __MACOSX/) are left out.
func unpackBundle(ctx context.Context, zipPath, dest string) error {
	r, root, err := openBundleZip(zipPath, maxBundleBytes)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := os.Mkdir(dest, 0o755); err != nil {
		return err
	}
	for _, f := range r.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, ok := strings.CutPrefix(f.Name, root)
		if !ok || rel == "" {
			continue
		}
		target := filepath.Join(dest, filepath.FromSlash(rel))
		if f.Mode().IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := unpackFile(f, target); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

// unpackFile writes a zip entry to target, a new file, no longer than the entry declares.
func unpackFile(f *zip.File, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	in, err := f.Open()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(in, int64(f.UncompressedSize64)+1))
	if err == nil && uint64(n) > f.UncompressedSize64 {
		err = fmt.Errorf("longer than the %d bytes it declares", f.UncompressedSize64)
	}
	if err == nil {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}
