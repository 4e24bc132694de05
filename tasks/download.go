package tasks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gochat/loader"
)

// HuggingFace is the HuggingFace Hub, whose API lists a dataset split's parquet export:
// GET /api/datasets/<repo>/parquet/<config>/<split> answers a JSON array of the URLs of
// its files, in order (each redirects to the file under the repository's
// refs/convert/parquet revision, /datasets/<repo>/resolve/refs%2Fconvert%2Fparquet/
// <config>/<split>/NNNN.parquet).
const HuggingFace = "https://huggingface.co"

// Sources are where Download fetches from; empty fields take the defaults in brackets.
type Sources struct {
	HuggingFace string // the Hub's address [HuggingFace]
	Identity    string // the identity conversations' URL [IdentityURL]
}

// partialSuffix marks a split's folder while its files arrive: the folder takes the
// split's name only once every file is in it, so a split under its name is always whole.
const partialSuffix = ".partial"

// listingFile holds, in a split's partial folder, the listing its files were fetched by.
const listingFile = "listing.json"

// Download fetches the named datasets of the catalog into root, every split of each: a
// HuggingFace dataset as its parquet export (each file checked to have the dataset's
// columns before it takes its name), the identity conversations as their JSONL file
// (checked to read). A split already under root is not fetched again; one cut off resumes
// where it stopped. It returns the errors of what failed after every other file has
// been tried.
func Download(ctx context.Context, root string, names []string, src Sources, opt loader.DownloadOptions) error {
	src.HuggingFace = strings.TrimSuffix(cmp.Or(src.HuggingFace, HuggingFace), "/")
	src.Identity = cmp.Or(src.Identity, IdentityURL)
	var pending []splitDownload
	var files []loader.Remote
	seen := map[string]bool{}
	for _, name := range names {
		d, err := Lookup(name)
		if err != nil {
			return err
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if d.Repo == "" {
			files = append(files, loader.Remote{URL: src.Identity, Path: d.File(root), Check: readable(d.Splits[0].read)})
			continue
		}
		for _, s := range d.Splits {
			dir := d.Dir(root, s)
			if _, err := os.Stat(dir); err == nil {
				continue
			}
			pending = append(pending, splitDownload{
				listing: fmt.Sprintf("%s/api/datasets/%s/parquet/%s/%s", src.HuggingFace, d.Repo, url.PathEscape(s.Config), url.PathEscape(s.HFSplit)),
				dir:     dir,
				split:   s,
			})
		}
	}
	// The listings first, each kept in its split's partial folder so that a resumed
	// download fetches the files it started with.
	listings := make([]loader.Remote, len(pending))
	for i, p := range pending {
		listings[i] = loader.Remote{URL: p.listing, Path: filepath.Join(p.dir+partialSuffix, listingFile), Check: readListingOK}
	}
	quiet := opt
	quiet.Progress = nil
	errs := []error{loader.Fetch(ctx, listings, quiet)}
	for i := range pending {
		err := pending[i].plan()
		if err != nil && !errors.Is(err, os.ErrNotExist) { // a listing not fetched is in Fetch's error
			errs = append(errs, err)
		}
		files = append(files, pending[i].files...)
	}
	errs = append(errs, loader.Fetch(ctx, files, opt))
	for _, p := range pending {
		errs = append(errs, p.finish())
	}
	return errors.Join(errs...)
}

// splitDownload is a split being fetched: its listing's URL, its folder and, once the
// listing is read, its files.
type splitDownload struct {
	listing string
	dir     string
	split   Split
	files   []loader.Remote
}

// plan reads the split's listing and makes its files: the listed URLs (resolved against
// the listing's), fetched as NNNN.parquet in the listing's order, each checked to have
// the split's columns. It makes none when an error is returned.
func (p *splitDownload) plan() error {
	partial := p.dir + partialSuffix
	urls, err := readListing(filepath.Join(partial, listingFile))
	if err != nil {
		return err
	}
	base, err := url.Parse(p.listing)
	if err != nil {
		return err
	}
	layout := p.split.layout
	check := func(path string) error { return checkColumns(path, layout) }
	files := make([]loader.Remote, len(urls))
	for i, u := range urls {
		ref, err := base.Parse(u)
		if err != nil {
			return fmt.Errorf("%s: file %d: %w", p.listing, i, err)
		}
		files[i] = loader.Remote{URL: ref.String(), Path: filepath.Join(partial, fmt.Sprintf("%04d.parquet", i)), Check: check}
	}
	p.files = files
	return nil
}

// finish gives the split's folder its name once every file of it is in: Fetch names a
// file only when it is whole, so one missing means a download that failed.
func (p *splitDownload) finish() error {
	if len(p.files) == 0 {
		return nil // no listing: Fetch's error or plan's says why
	}
	for _, f := range p.files {
		if _, err := os.Stat(f.Path); err != nil {
			return nil // Fetch's error says why
		}
	}
	partial := p.dir + partialSuffix
	if err := os.Remove(filepath.Join(partial, listingFile)); err != nil {
		return err
	}
	return os.Rename(partial, p.dir)
}

// readListing reads the Hub's listing of a split's parquet files: a JSON array of URLs,
// one at least.
func readListing(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var urls []string
	if err := json.Unmarshal(raw, &urls); err != nil {
		return nil, fmt.Errorf("%s: not a listing of parquet files (a JSON array of URLs): %w", path, err)
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%s: the listing names no parquet files", path)
	}
	return urls, nil
}

func readListingOK(path string) error {
	_, err := readListing(path)
	return err
}

// readable is a check that a file reads as a task.
func readable(read func(string) (Task, error)) func(string) error {
	return func(path string) error {
		_, err := read(path)
		return err
	}
}
