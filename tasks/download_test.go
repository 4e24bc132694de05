package tasks

import (
	"context"
	"encoding/json"
	"fmt"
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

// hubServer plays the HuggingFace Hub for the test: the parquet listing of a split at
// /api/datasets/<repo>/parquet/<config>/<split> (a JSON array of the shard URLs
// /api/datasets/<repo>/parquet/<config>/<split>/<i>.parquet, each redirecting to
// /datasets/<repo>/resolve/refs%2Fconvert%2Fparquet/<config>/<split>/<iiii>.parquet) and
// the identity conversations at /identity_conversations.jsonl. The k-th request for a
// path meets the k-th step of its script ("ok" past the end): "500", or "cut" (the whole
// length promised, half sent).
type hubServer struct {
	*httptest.Server
	files  map[string][]byte // by path, resolved files and the identity conversations
	splits map[string]int    // files per listed split, by "<repo>/<config>/<split>"

	mu     sync.Mutex
	script map[string][]string
	hits   map[string]int
	ranges int
}

func newHub(t *testing.T) *hubServer {
	h := &hubServer{files: map[string][]byte{}, splits: map[string]int{}, script: map[string][]string{}, hits: map[string]int{}}
	h.Server = httptest.NewServer(h)
	t.Cleanup(h.Close)
	return h
}

// resolved is where the Hub serves file i of a split (decoded, as r.URL.Path reads it).
func resolved(repo, config, split string, i int) string {
	return fmt.Sprintf("/datasets/%s/resolve/refs/convert/parquet/%s/%s/%04d.parquet", repo, config, split, i)
}

// listing is a split's listing path.
func listing(repo, config, split string) string {
	return fmt.Sprintf("/api/datasets/%s/parquet/%s/%s", repo, config, split)
}

// serveSplit serves the files of a split of dataset d, each written in the test layout
// named layout with rows of its own, n rows a file.
func (h *hubServer) serveSplit(t *testing.T, d Dataset, s Split, layout string, files, n int) {
	for i := range files {
		path := filepath.Join(t.TempDir(), "f.parquet")
		writeHF(t, path, layout, i*n, n)
		h.files[resolved(d.Repo, s.Config, s.HFSplit, i)], _ = os.ReadFile(path)
	}
	h.splits[d.Repo+"/"+s.Config+"/"+s.HFSplit] = files
}

func (h *hubServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	h.mu.Lock()
	step := "ok"
	if k := h.hits[path]; k < len(h.script[path]) {
		step = h.script[path][k]
	}
	h.hits[path]++
	if r.Header.Get("Range") != "" {
		h.ranges++
	}
	h.mu.Unlock()
	if step == "500" {
		http.Error(w, "overloaded", http.StatusInternalServerError)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/api/datasets/"); ok {
		h.serveAPI(w, r, rest)
		return
	}
	data, ok := h.files[path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if step == "cut" {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:len(data)/2])
		return
	}
	http.ServeContent(w, r, path, time.Time{}, strings.NewReader(string(data)))
}

// serveAPI answers a listing (<repo>/parquet/<config>/<split>) or redirects a shard
// (<repo>/parquet/<config>/<split>/<i>.parquet) to its resolved file.
func (h *hubServer) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	repo, tail, ok := strings.Cut(rest, "/parquet/")
	parts := strings.Split(tail, "/")
	if !ok || len(parts) < 2 {
		http.NotFound(w, r)
		return
	}
	config, split := parts[0], parts[1]
	n, listed := h.splits[repo+"/"+config+"/"+split]
	if !listed {
		http.NotFound(w, r)
		return
	}
	if len(parts) == 3 {
		var i int
		if _, err := fmt.Sscanf(parts[2], "%d.parquet", &i); err != nil || i >= n {
			http.NotFound(w, r)
			return
		}
		to := fmt.Sprintf("/datasets/%s/resolve/refs%%2Fconvert%%2Fparquet/%s/%s/%04d.parquet", repo, config, split, i)
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/api/datasets/%s/parquet/%s/%s/%d.parquet", h.URL, repo, config, split, i)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(urls)
}

func fastRetries() loader.DownloadOptions {
	return loader.DownloadOptions{Backoff: 10 * time.Millisecond, Stall: 5 * time.Second, Attempts: 4}
}

// leftovers are the files and folders under root that only an unfinished download leaves.
func leftovers(t *testing.T, root string) []string {
	var left []string
	filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err == nil && (strings.HasSuffix(path, ".tmp") || strings.HasSuffix(path, partialSuffix) || info.Name() == listingFile) {
			left = append(left, path)
		}
		return nil
	})
	return left
}

// TestDownloadFetchesSplits fetches GSM8K, MMLU and the identity conversations from a
// local Hub that cuts a file off (resumed with a range request) and fails a listing and
// the identity file with 500s (retried); every split then opens with every row, nothing
// unfinished is left, and a second run asks for nothing.
func TestDownloadFetchesSplits(t *testing.T) {
	hub := newHub(t)
	gsm8k, _ := Lookup("gsm8k")
	mmlu, _ := Lookup("mmlu")
	identity, _ := Lookup("identity")
	rows := map[string]int{}
	for _, d := range []Dataset{gsm8k, mmlu} {
		for _, s := range d.Splits {
			files := 1
			if s.Name == "train" {
				files = 2
			}
			hub.serveSplit(t, d, s, layoutName(d, s), files, 4)
			rows[d.Name+" "+s.Name] = 4 * files
		}
	}
	idPath := filepath.Join(t.TempDir(), "identity_conversations.jsonl")
	writeIdentity(t, idPath, 3)
	hub.files["/identity_conversations.jsonl"], _ = os.ReadFile(idPath)
	hub.script[resolved("openai/gsm8k", "main", "train", 1)] = []string{"cut"}
	hub.script[listing("openai/gsm8k", "main", "test")] = []string{"500", "500"}
	hub.script["/identity_conversations.jsonl"] = []string{"500"}

	root := filepath.Join(t.TempDir(), "tasks")
	src := Sources{HuggingFace: hub.URL, Identity: hub.URL + "/identity_conversations.jsonl"}
	var last, total int64
	var mu sync.Mutex
	opt := fastRetries()
	opt.Progress = func(done, tot int64) { mu.Lock(); last, total = done, tot; mu.Unlock() }
	if err := Download(context.Background(), root, []string{"gsm8k", "mmlu", "identity", "gsm8k"}, src, opt); err != nil {
		t.Fatal(err)
	}
	for what, n := range rows {
		name, split, _ := strings.Cut(what, " ")
		task, err := Open(root, name, split)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		checkRows(t, what, task, n)
	}
	task, err := Open(root, "identity", "train")
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "identity", task, 3)
	if hub.ranges == 0 {
		t.Error("the cut-off file was not resumed with a range request")
	}
	if last == 0 || last != total {
		t.Errorf("progress ended at %d of %d bytes", last, total)
	}
	if left := leftovers(t, root); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := os.Stat(identity.File(root)); err != nil {
		t.Error(err)
	}

	// A second run finds every split and file in place and asks for nothing.
	clear(hub.hits)
	if err := Download(context.Background(), root, []string{"gsm8k", "mmlu", "identity"}, src, fastRetries()); err != nil || len(hub.hits) != 0 {
		t.Errorf("second run: %v, requests %v", err, hub.hits)
	}
}

// TestDownloadRefusesWrongSchema: a split whose file lacks the dataset's columns fails,
// named with the missing column; nothing takes the file's or the split's name, and the
// dataset's other splits are complete.
func TestDownloadRefusesWrongSchema(t *testing.T) {
	hub := newHub(t)
	arc, _ := Lookup("arc-easy")
	for _, s := range arc.Splits {
		layout := "arc-easy"
		if s.Name == "validation" {
			layout = "gsm8k"
		}
		hub.serveSplit(t, arc, s, layout, 1, 3)
	}
	root := t.TempDir()
	err := Download(context.Background(), root, []string{"arc-easy"}, Sources{HuggingFace: hub.URL}, fastRetries())
	validation, _ := arc.Split("validation")
	file := filepath.Join(arc.Dir(root, validation)+partialSuffix, "0000.parquet")
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "no column id (it has question, answer)") {
		t.Fatalf("want the refused file and its missing column named: %v", err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("the refused file took its name")
	}
	if _, err := os.Stat(arc.Dir(root, validation)); err == nil {
		t.Error("the failed split took its name")
	}
	if _, err := Open(root, "arc-easy", "validation"); err == nil || !strings.Contains(err.Error(), "interrupted download") {
		t.Errorf("opening the failed split: %v", err)
	}
	for _, split := range []string{"train", "test"} {
		if task, err := Open(root, "arc-easy", split); err != nil || task.Len() != 3 {
			t.Errorf("arc-easy %s: %v", split, err)
		}
	}
}

// TestDownloadUnknownDataset: a name outside the catalog is refused before any request,
// with the names that exist.
func TestDownloadUnknownDataset(t *testing.T) {
	hub := newHub(t)
	err := Download(context.Background(), t.TempDir(), []string{"gsm8k", "gsm9k"}, Sources{HuggingFace: hub.URL}, fastRetries())
	if err == nil || !strings.Contains(err.Error(), `no dataset "gsm9k"`) || !strings.Contains(err.Error(), strings.Join(Names(), ", ")) {
		t.Errorf("unknown dataset: %v", err)
	}
	if len(hub.hits) != 0 {
		t.Errorf("requests before the names were checked: %v", hub.hits)
	}
}
