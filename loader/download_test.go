package loader

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// shardServer serves real shards at /shard_{i:05d}.parquet, honouring range requests,
// with failures scripted per shard: the k-th request for a shard meets the k-th entry of
// its script ("ok" past the end). It also checks, on every request, that no file in dir
// carries a shard's name without being that whole shard.
type shardServer struct {
	t      *testing.T
	dir    string
	shards map[string][]byte
	mu     sync.Mutex
	script map[string][]string
	hits   map[string]int
	ranges int // requests that asked for a range
}

func newShardServer(t *testing.T, dir string, n int) (*shardServer, *httptest.Server) {
	s := &shardServer{t: t, dir: dir, shards: map[string][]byte{}, script: map[string][]string{}, hits: map[string]int{}}
	src := t.TempDir()
	for _, i := range []int{0, 1, 2, FineWebShards - 1}[:n] {
		docs := make([]string, 3000)
		for k := range docs {
			docs[k] = fmt.Sprintf("shard %d, document %d: %s", i, k, strings.Repeat("text ", k%50))
		}
		p := filepath.Join(src, ShardName(i))
		if err := WriteShard(p, docs); err != nil {
			t.Fatal(err)
		}
		s.shards[ShardName(i)], _ = os.ReadFile(p)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *shardServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	s.checkNoPartialShards()
	s.mu.Lock()
	step := "ok"
	if k := s.hits[name]; k < len(s.script[name]) {
		step = s.script[name][k]
	}
	s.hits[name]++
	if r.Header.Get("Range") != "" {
		s.ranges++
	}
	s.mu.Unlock()
	data, ok := s.shards[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	half := len(data) / 2
	switch step {
	case "ok":
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	case "500":
		http.Error(w, "overloaded", http.StatusInternalServerError)
	case "cut": // promise the whole file, send half, hang up
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:half])
	case "stall": // send half, then nothing until the client gives up
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:half])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	case "corrupt": // the right length with a damaged footer
		bad := bytes.Clone(data)
		copy(bad[len(bad)-8:], "XXXXXXXX")
		w.Header().Set("Content-Length", fmt.Sprint(len(bad)))
		w.Write(bad)
	}
}

func (s *shardServer) checkNoPartialShards() {
	for name, data := range s.shards {
		got, err := os.ReadFile(filepath.Join(s.dir, name))
		if err == nil && !bytes.Equal(got, data) {
			s.t.Errorf("%s exists with %d of %d bytes", name, len(got), len(data))
		}
	}
}

func fastRetries(base string) DownloadOptions {
	return DownloadOptions{BaseURL: base, Backoff: 10 * time.Millisecond, Stall: time.Second, Attempts: 4}
}

func TestDownloadSurvivesFailures(t *testing.T) {
	dir := t.TempDir()
	s, srv := newShardServer(t, dir, 4)
	s.script[ShardName(0)] = []string{"500", "cut"}
	s.script[ShardName(1)] = []string{"stall", "500"}
	s.script[ShardName(2)] = []string{"corrupt"}
	s.script[ShardName(FineWebShards-1)] = []string{"cut", "cut"}
	var last, total int64
	var mu sync.Mutex
	opt := fastRetries(srv.URL)
	opt.Progress = func(done, tot int64) { mu.Lock(); last, total = done, tot; mu.Unlock() }
	indices := []int{0, 1, 2, FineWebShards - 1}
	if err := Download(context.Background(), dir, indices, opt); err != nil {
		t.Fatal(err)
	}
	var want int64
	for name, data := range s.shards {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, want %d (%v)", name, len(got), len(data), err)
		}
		want += int64(len(data))
	}
	if s.ranges == 0 {
		t.Error("no cut-off download was resumed with a range request")
	}
	if last != want || total != want {
		t.Errorf("progress ended at %d of %d bytes, want %d", last, total, want)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) > 0 {
		t.Errorf("left behind: %v", tmp)
	}
	train, val, err := Split(dir)
	if err != nil || val != filepath.Join(dir, ShardName(FineWebShards-1)) || len(train) != 3 {
		t.Errorf("split: train %v, validation %s (%v)", train, val, err)
	}

	// A second run finds every shard complete and asks for nothing.
	before := len(s.hits)
	clear(s.hits)
	if err := Download(context.Background(), dir, indices, opt); err != nil || len(s.hits) != 0 {
		t.Errorf("second run: %v, %d requests (before: %d shards fetched)", err, len(s.hits), before)
	}
}

func TestDownloadGivesUp(t *testing.T) {
	dir := t.TempDir()
	s, srv := newShardServer(t, dir, 2)
	s.script[ShardName(1)] = []string{"500", "cut", "stall", "500", "500"}
	err := Download(context.Background(), dir, []int{0, 1, 5}, fastRetries(srv.URL))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, ShardName(1)) || !strings.Contains(msg, "500") || !strings.Contains(msg, ShardName(5)) || !strings.Contains(msg, "404") {
		t.Errorf("error should name the failing shards and why: %v", err)
	}
	if s.hits[ShardName(5)] != 1 {
		t.Errorf("a missing shard was asked for %d times; 404 is final", s.hits[ShardName(5)])
	}
	if _, err := os.Stat(filepath.Join(dir, ShardName(0))); err != nil {
		t.Errorf("the good shard is missing: %v", err)
	}
	for _, name := range []string{ShardName(1), ShardName(5)} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s exists after failing", name)
		}
	}
}

func TestDownloadCancels(t *testing.T) {
	dir := t.TempDir()
	s, srv := newShardServer(t, dir, 1)
	s.script[ShardName(0)] = []string{"stall"}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	opt := fastRetries(srv.URL)
	opt.Stall = time.Minute
	start := time.Now()
	err := Download(ctx, dir, []int{0}, opt)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled download: %v after %v", err, time.Since(start))
	}
	if _, err := os.Stat(filepath.Join(dir, ShardName(0))); err == nil {
		t.Error("a cancelled shard got its name")
	}
}

func TestDownloadUnwritableFolder(t *testing.T) {
	dir := t.TempDir()
	_, srv := newShardServer(t, dir, 1)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if err := Download(context.Background(), filepath.Join(file, "sub"), []int{0}, fastRetries(srv.URL)); err == nil {
		t.Fatal("downloaded into a folder under a file")
	}
}

func TestSplit(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Split(dir); err == nil || !strings.Contains(err.Error(), "no shards") {
		t.Errorf("empty folder: %v", err)
	}
	for _, i := range []int{3, 0, 7} {
		WriteShard(filepath.Join(dir, ShardName(i)), []string{"x"})
	}
	os.WriteFile(filepath.Join(dir, ShardName(9)+".tmp"), []byte("partial"), 0o644)
	train, val, err := Split(dir)
	if err != nil || val != filepath.Join(dir, ShardName(7)) || len(train) != 2 || train[0] != filepath.Join(dir, ShardName(0)) {
		t.Errorf("packed folder: train %v, validation %s, %v", train, val, err)
	}
}

// TestFetchChecksBeforeNaming: Fetch's files of any kind take their names only once their
// Check accepts them; a refused file is tried again and leaves nothing under its name, a
// file on disk that its Check refuses is fetched again, and one it accepts is not.
func TestFetchChecksBeforeNaming(t *testing.T) {
	files := map[string]string{"/good.txt": "good contents", "/bad.txt": "bad contents", "/stale.txt": "fresh contents"}
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Time{}, strings.NewReader(body))
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "nested", "folder")
	noBad := func(path string) error {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasPrefix(string(b), "bad") {
			return fmt.Errorf("refused %q", b)
		}
		return err
	}
	remote := func(name string) Remote {
		return Remote{URL: srv.URL + "/" + name, Path: filepath.Join(dir, name), Check: noBad}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "stale.txt"), []byte("bad and stale"), 0o644)
	err := Fetch(context.Background(), []Remote{remote("good.txt"), remote("bad.txt"), remote("stale.txt")}, fastRetries(""))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "bad.txt")) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("want the refused file named: %v", err)
	}
	if hits["/bad.txt"] != 4 {
		t.Errorf("a refused file was asked for %d times, want every attempt (4)", hits["/bad.txt"])
	}
	for name, want := range map[string]string{"good.txt": "good contents", "stale.txt": "fresh contents", "bad.txt": ""} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if string(got) != want || (want == "") != os.IsNotExist(err) {
			t.Errorf("%s holds %q (%v), want %q", name, got, err, want)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) > 0 {
		t.Errorf("left behind: %v", tmp)
	}
	clear(hits)
	if err := Fetch(context.Background(), []Remote{remote("good.txt"), {URL: srv.URL + "/stale.txt", Path: filepath.Join(dir, "stale.txt")}}, fastRetries("")); err != nil || len(hits) != 0 {
		t.Errorf("files on disk that pass their checks were fetched again: %v, %v", err, hits)
	}
}
