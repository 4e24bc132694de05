package eval

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gochat/loader"
)

// bundleEntry is a zip entry to write: a name, its contents, and its mode (0: a file).
type bundleEntry struct {
	name, body string
	mode       fs.FileMode
}

// goodBundle are the entries of a bundle zipped as nanochat's is, in a folder eval_bundle/,
// with a macOS resource folder beside it.
var goodBundle = []bundleEntry{
	{name: "eval_bundle/", mode: fs.ModeDir | 0o755},
	{name: "eval_bundle/core.yaml", body: "icl_tasks:\n- label: hellaswag\n"},
	{name: "eval_bundle/eval_meta_data.csv", body: "Eval Task,Random baseline\nhellaswag,25\n"},
	{name: "eval_bundle/eval_data/language_understanding/hellaswag.jsonl", body: strings.Repeat(`{"ctx":"a","gold":0}`+"\n", 2000)},
	{name: "__MACOSX/eval_bundle/._core.yaml", body: "resource fork"},
}

func zipOf(t *testing.T, entries []bundleEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(e.body))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipServer serves a zip at /eval_bundle.zip, honouring ranges; the k-th request meets
// the k-th step of script ("ok" past the end): "cut" promises the whole zip and sends
// half, "truncated" sends the zip's first half as if it were all of it.
type zipServer struct {
	*httptest.Server
	data   []byte
	mu     sync.Mutex
	script []string
	hits   int
	ranges int
}

func newZipServer(t *testing.T, data []byte, script ...string) *zipServer {
	s := &zipServer{data: data, script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		step := "ok"
		if s.hits < len(s.script) {
			step = s.script[s.hits]
		}
		s.hits++
		if r.Header.Get("Range") != "" {
			s.ranges++
		}
		s.mu.Unlock()
		switch step {
		case "cut":
			w.Header().Set("Content-Length", fmt.Sprint(len(s.data)))
			w.Write(s.data[:len(s.data)/2])
		case "truncated":
			w.Write(s.data[:len(s.data)/2])
		default:
			http.ServeContent(w, r, "eval_bundle.zip", time.Time{}, bytes.NewReader(s.data))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func fastRetries(attempts int) loader.DownloadOptions {
	return loader.DownloadOptions{Backoff: time.Millisecond, Stall: 5 * time.Second, Attempts: attempts}
}

// TestDownloadBundle: a download cut off midway resumes, the bundle folder is unpacked to
// dir afresh (the macOS folder beside it left out, nothing of an earlier interrupted
// unpacking kept), the zip and the partial folder are gone, and a second call asks for
// nothing.
func TestDownloadBundle(t *testing.T) {
	srv := newZipServer(t, zipOf(t, goodBundle), "cut")
	dir := filepath.Join(t.TempDir(), "eval_bundle")
	os.MkdirAll(filepath.Join(dir+".partial", "eval_data"), 0o755) // an unpacking cut off by a crash
	os.WriteFile(filepath.Join(dir+".partial", "eval_data", "stale.jsonl"), []byte("half"), 0o644)
	if err := DownloadBundle(context.Background(), dir, srv.URL+"/eval_bundle.zip", fastRetries(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "eval_data", "stale.jsonl")); err == nil {
		t.Error("the interrupted unpacking's file is in the bundle")
	}
	if srv.ranges == 0 {
		t.Error("the cut-off download was not resumed with a range request")
	}
	for _, e := range goodBundle[1:4] {
		got, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(e.name, "eval_bundle/")))
		if err != nil || string(got) != e.body {
			t.Errorf("%s: %d bytes, want %d (%v)", e.name, len(got), len(e.body), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "__MACOSX")); err == nil {
		t.Error("unpacked the entries outside the bundle's folder")
	}
	for _, gone := range []string{dir + ".zip", dir + ".zip.tmp", dir + ".partial"} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s is left", gone)
		}
	}
	if _, err := ReadBaselines(filepath.Join(dir, "eval_meta_data.csv")); err != nil {
		t.Errorf("the unpacked baselines: %v", err)
	}
	srv.hits = 0
	if err := DownloadBundle(context.Background(), dir, srv.URL+"/eval_bundle.zip", fastRetries(3)); err != nil || srv.hits != 0 {
		t.Errorf("second call: %v after %d requests", err, srv.hits)
	}
}

// TestDownloadBundleRefuses: zips that escape their folder, hold links, are cut short or
// are not a bundle are refused and leave nothing at dir; so is a dir that is not a bundle.
func TestDownloadBundleRefuses(t *testing.T) {
	good := zipOf(t, goodBundle)
	for _, c := range []struct {
		what   string
		data   []byte
		script []string
		want   string
	}{
		{"zip slip", zipOf(t, append(goodBundle[:4:4], bundleEntry{name: "eval_bundle/../../evil.txt", body: "x"})), nil,
			`the entry "eval_bundle/../../evil.txt" would land outside`},
		{"absolute", zipOf(t, append(goodBundle[:4:4], bundleEntry{name: "/tmp/evil.txt", body: "x"})), nil, "would land outside"},
		{"link", zipOf(t, append(goodBundle[:4:4], bundleEntry{name: "eval_bundle/link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777})), nil,
			`the entry "eval_bundle/link" is a link`},
		{"truncated", good, []string{"truncated", "truncated"}, "not a readable zip"},
		{"no baselines", zipOf(t, goodBundle[:2]), nil, "not an eval bundle"},
	} {
		srv := newZipServer(t, c.data, c.script...)
		parent := t.TempDir()
		dir := filepath.Join(parent, "eval_bundle")
		err := DownloadBundle(context.Background(), dir, srv.URL+"/eval_bundle.zip", fastRetries(2))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.what, err, c.want)
		}
		left, _ := os.ReadDir(parent)
		if len(left) != 0 {
			t.Errorf("%s: left %v", c.what, left)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(parent), "evil.txt")); err == nil {
			t.Errorf("%s: wrote outside the folder", c.what)
		}
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644)
	if err := DownloadBundle(context.Background(), dir, "http://127.0.0.1:1/none.zip", fastRetries(1)); err == nil || !strings.Contains(err.Error(), "exists without an eval bundle") {
		t.Errorf("a folder that is not a bundle: %v", err)
	}
}

// TestBundleSizeBound: a zip unpacking past the bound is refused before anything is
// written.
func TestBundleSizeBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.zip")
	os.WriteFile(path, zipOf(t, goodBundle), 0o644)
	if r, _, err := openBundleZip(path, 1000); err == nil || !strings.Contains(err.Error(), "unpacks to more than 1000 bytes") {
		if r != nil {
			r.Close()
		}
		t.Errorf("past the bound: %v", err)
	}
	r, root, err := openBundleZip(path, maxBundleBytes)
	if err != nil || root != "eval_bundle/" {
		t.Fatalf("within the bound: root %q, %v", root, err)
	}
	r.Close()
}
