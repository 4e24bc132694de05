package loader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FineWebURL is where nanochat's pretraining shards are served: FineWeb-edu's 100B-token
// sample, shuffled and cut into shards of about 250M characters. A mirror of the
// HuggingFace Hub serves them under FineWebPath.
const FineWebURL = "https://huggingface.co" + FineWebPath

// FineWebPath is FineWebURL's path on the HuggingFace Hub.
const FineWebPath = "/datasets/karpathy/fineweb-edu-100b-shuffle/resolve/main"

// FineWebShards is the number of shards of FineWebURL; the last one validates.
const FineWebShards = 1823

// ShardName is the file name of shard i, as nanochat names them.
func ShardName(i int) string { return fmt.Sprintf("shard_%05d.parquet", i) }

// DownloadOptions control Fetch and Download. Zero fields take the defaults in brackets.
type DownloadOptions struct {
	BaseURL  string        // Download's shards are BaseURL/ShardName(i) [FineWebURL]; Fetch ignores it
	Workers  int           // files fetched at once [4]
	Attempts int           // tries per file [5]
	Backoff  time.Duration // wait before the second try, doubled after each [2 s]
	Stall    time.Duration // give up a try when no byte arrives for this long [30 s]
	Client   *http.Client  // [http.DefaultClient]

	// Progress, if set, is called as bytes arrive with the bytes fetched so far and an
	// estimate of the total (the known sizes, plus the mean known size for each file not
	// yet sized); files found complete on disk count in neither.
	Progress func(done, total int64)
}

// withDefaults fills opt's zero fields with their defaults.
func (opt DownloadOptions) withDefaults() DownloadOptions {
	opt.BaseURL = strings.TrimSuffix(cmp.Or(opt.BaseURL, FineWebURL), "/")
	opt.Workers = cmp.Or(opt.Workers, 4)
	opt.Attempts = cmp.Or(opt.Attempts, 5)
	opt.Backoff = cmp.Or(opt.Backoff, 2*time.Second)
	opt.Stall = cmp.Or(opt.Stall, 30*time.Second)
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	return opt
}

// Remote is a file to fetch: where it is served and the Path it takes on disk once it is
// complete and Check (nil: none) accepts it.
type Remote struct {
	URL, Path string
	Check     func(path string) error
}

// Download fetches the FineWeb shards with the given indices into dir (Fetch's files
// BaseURL/ShardName(i), each checked as a shard whose parquet footer reads).
func Download(ctx context.Context, dir string, indices []int, opt DownloadOptions) error {
	opt = opt.withDefaults()
	files := make([]Remote, len(indices))
	for k, i := range indices {
		files[k] = Remote{URL: opt.BaseURL + "/" + ShardName(i), Path: filepath.Join(dir, ShardName(i)), Check: checkShard}
	}
	return Fetch(ctx, files, opt)
}

// checkShard reads a downloaded shard's parquet footer and finds its "text" column.
func checkShard(path string) error {
	s, err := OpenShard(path)
	if err != nil {
		return err
	}
	return s.Close()
}

// Fetch brings the files to their paths, several at a time, creating their folders. A
// file's bytes go to its Path+".tmp", resumed with a range request after a cut-off try,
// and the file takes its name only once it is complete and Check accepts it: a file under
// its name is always whole. A file already at its Path that Check accepts is not fetched
// again. Failed tries are repeated with backoff, except those another try would repeat
// (404, 403, a file that cannot be written). Fetch returns the errors of the files that
// failed, each named, after every other file has been tried. The paths must differ.
func Fetch(ctx context.Context, files []Remote, opt DownloadOptions) error {
	opt = opt.withDefaults()
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
	}
	p := &progress{report: opt.Progress, sizes: make(map[int]int64), got: make(map[int]int64), files: len(files)}
	jobs := make(chan int)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for range min(opt.Workers, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				errs[k] = fetchFile(ctx, k, files[k], opt, p)
			}
		}()
	}
	for k := range files {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

// fetchFile brings file k to its path, retrying with backoff.
func fetchFile(ctx context.Context, k int, file Remote, opt DownloadOptions, p *progress) error {
	check := file.Check
	if check == nil {
		check = func(string) error { return nil }
	}
	if _, err := os.Stat(file.Path); err == nil && check(file.Path) == nil {
		p.skip()
		return nil
	}
	tmp := file.Path + ".tmp"
	wait := opt.Backoff
	var err error
	for try := 1; try <= opt.Attempts; try++ {
		if err = fetchOnce(ctx, file.URL, tmp, k, opt, p); err == nil {
			if err = check(tmp); err == nil {
				return os.Rename(tmp, file.Path)
			}
			os.Remove(tmp) // complete but refused: start over
			p.set(k, 0)
		}
		var perm permanent
		if ctx.Err() != nil || errors.As(err, &perm) || try == opt.Attempts {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait *= 2
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", file.Path, ctx.Err())
	}
	return fmt.Errorf("%s: %w", file.Path, err)
}

// permanent marks errors that another try would repeat.
type permanent struct{ error }

// fetchOnce makes one request for url, appending to the bytes tmp already holds when the
// server honours a range request, and returns nil once the whole file is in tmp.
func fetchOnce(ctx context.Context, url, tmp string, k int, opt DownloadOptions, p *progress) error {
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return permanent{err}
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return permanent{err}
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	// A watchdog cancels the request when no byte has arrived for opt.Stall.
	stalled := errors.New("stalled")
	watchdog := time.AfterFunc(opt.Stall, func() { cancel(fmt.Errorf("no data for %v: %w", opt.Stall, stalled)) })
	defer watchdog.Stop()
	resp, err := opt.Client.Do(req)
	if err != nil {
		return cmp.Or(context.Cause(ctx), err)
	}
	defer resp.Body.Close()
	var total int64
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, size, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return fmt.Errorf("range request for byte %d answered with %q", have, resp.Header.Get("Content-Range"))
		}
		total = size
	case resp.StatusCode == http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		have, total = 0, resp.ContentLength
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable: // tmp is longer than the file
		f.Truncate(0)
		p.set(k, 0)
		return fmt.Errorf("%s: %s", url, resp.Status)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return permanent{fmt.Errorf("%s: %s", url, resp.Status)}
	default:
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if total > 0 {
		p.sized(k, total)
	}
	p.set(k, have)
	buf := make([]byte, 1<<20)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(opt.Stall)
			if _, err := f.Write(buf[:n]); err != nil {
				return permanent{err}
			}
			have += int64(n)
			p.set(k, have)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if cause := context.Cause(ctx); cause != nil {
				return cause
			}
			return fmt.Errorf("after %d bytes: %w", have, rerr)
		}
	}
	if total > 0 && have != total {
		return fmt.Errorf("got %d of %d bytes", have, total)
	}
	return f.Sync()
}

// contentRange parses "bytes START-END/SIZE".
func contentRange(h string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	span, sizeText, found2 := strings.Cut(rest, "/")
	first, _, found3 := strings.Cut(span, "-")
	if !found || !found2 || !found3 {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	size, err2 := strconv.ParseInt(sizeText, 10, 64)
	return start, size, err1 == nil && err2 == nil
}

// progress adds up the bytes of files fetched concurrently, each by its index.
type progress struct {
	mu     sync.Mutex
	report func(done, total int64)
	files  int
	sizes  map[int]int64 // full size of each file whose size is known
	got    map[int]int64 // bytes on disk per file
}

// skip takes a file already on disk out of the count: progress is this run's bytes.
func (p *progress) skip() {
	p.mu.Lock()
	p.files--
	p.mu.Unlock()
}

func (p *progress) sized(i int, size int64) {
	p.mu.Lock()
	p.sizes[i] = size
	p.mu.Unlock()
}

func (p *progress) set(i int, bytes int64) {
	if p.report == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got[i] = bytes
	var done, known int64
	for _, b := range p.got {
		done += b
	}
	for _, s := range p.sizes {
		known += s
	}
	total := known
	if n := len(p.sizes); n > 0 {
		total += known / int64(n) * int64(p.files-n)
	}
	p.report(done, max(total, done))
}
