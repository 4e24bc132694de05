package loader

import (
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
// sample, shuffled and cut into shards of about 250M characters.
const FineWebURL = "https://huggingface.co/datasets/karpathy/fineweb-edu-100b-shuffle/resolve/main"

// FineWebShards is the number of shards of FineWebURL; the last one validates.
const FineWebShards = 1823

// ShardName is the file name of shard i, as nanochat names them.
func ShardName(i int) string { return fmt.Sprintf("shard_%05d.parquet", i) }

// DownloadOptions control Download. Zero fields take the defaults in brackets.
type DownloadOptions struct {
	BaseURL  string        // the shards are BaseURL/ShardName(i) [FineWebURL]
	Workers  int           // shards fetched at once [4]
	Attempts int           // tries per shard [5]
	Backoff  time.Duration // wait before the second try, doubled after each [2 s]
	Stall    time.Duration // give up a try when no byte arrives for this long [30 s]
	Client   *http.Client  // [http.DefaultClient]

	// Progress, if set, is called as bytes arrive with the bytes fetched so far and an
	// estimate of the total (the known sizes, plus the mean known size for each shard not
	// yet sized); shards found complete on disk count in neither.
	Progress func(done, total int64)
}

// Download fetches the shards with the given indices into dir, several at a time. A
// shard's bytes go to ShardName(i)+".tmp", resumed with a range request after a cut-off
// try, and the file takes the shard's name only once it is complete and its parquet footer
// reads: a file with a shard's name is always a whole shard. Shards already in dir are
// skipped. It returns the first error after every other shard has been tried.
func Download(ctx context.Context, dir string, indices []int, opt DownloadOptions) error {
	if opt.BaseURL == "" {
		opt.BaseURL = FineWebURL
	}
	opt.BaseURL = strings.TrimSuffix(opt.BaseURL, "/")
	opt.Workers = cmpOr(opt.Workers, 4)
	opt.Attempts = cmpOr(opt.Attempts, 5)
	opt.Backoff = cmpOr(opt.Backoff, 2*time.Second)
	opt.Stall = cmpOr(opt.Stall, 30*time.Second)
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := &progress{report: opt.Progress, sizes: make(map[int]int64), got: make(map[int]int64), shards: len(indices)}
	jobs := make(chan int)
	errs := make([]error, len(indices))
	var wg sync.WaitGroup
	for range min(opt.Workers, len(indices)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				errs[k] = fetchShard(ctx, dir, indices[k], opt, p)
			}
		}()
	}
	for k := range indices {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// fetchShard brings shard i into dir, retrying with backoff.
func fetchShard(ctx context.Context, dir string, i int, opt DownloadOptions, p *progress) error {
	name := ShardName(i)
	final := filepath.Join(dir, name)
	if _, err := os.Stat(final); err == nil {
		if s, err := OpenShard(final); err == nil {
			s.Close()
			p.skip()
			return nil
		}
	}
	url := opt.BaseURL + "/" + name
	tmp := final + ".tmp"
	wait := opt.Backoff
	var err error
	for try := 1; try <= opt.Attempts; try++ {
		if err = fetchOnce(ctx, url, tmp, i, opt, p); err == nil {
			if err = checkShard(tmp); err == nil {
				return os.Rename(tmp, final)
			}
			os.Remove(tmp) // complete but unreadable: start over
			p.set(i, 0)
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
		return fmt.Errorf("%s: %w", name, ctx.Err())
	}
	return fmt.Errorf("%s: %w", name, err)
}

// permanent marks errors that another try would repeat.
type permanent struct{ error }

// checkShard reads a downloaded file's parquet footer.
func checkShard(path string) error {
	s, err := OpenShard(path)
	if err != nil {
		return err
	}
	return s.Close()
}

// fetchOnce makes one request for url, appending to the bytes tmp already holds when the
// server honours a range request, and returns nil once the whole file is in tmp.
func fetchOnce(ctx context.Context, url, tmp string, i int, opt DownloadOptions, p *progress) error {
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
		return cmpOr(context.Cause(ctx), err)
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
		p.set(i, 0)
		return fmt.Errorf("%s: %s", url, resp.Status)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return permanent{fmt.Errorf("%s: %s", url, resp.Status)}
	default:
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if total > 0 {
		p.sized(i, total)
	}
	p.set(i, have)
	buf := make([]byte, 1<<20)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(opt.Stall)
			if _, err := f.Write(buf[:n]); err != nil {
				return permanent{err}
			}
			have += int64(n)
			p.set(i, have)
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

// progress adds up the bytes of shards fetched concurrently.
type progress struct {
	mu     sync.Mutex
	report func(done, total int64)
	shards int
	sizes  map[int]int64 // full size of each shard whose size is known
	got    map[int]int64 // bytes on disk per shard
}

// skip takes a shard already on disk out of the count: progress is this run's bytes.
func (p *progress) skip() {
	p.mu.Lock()
	p.shards--
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
		total += known / int64(n) * int64(p.shards-n)
	}
	p.report(done, max(total, done))
}
