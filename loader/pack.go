package loader

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// PackOptions control Pack. Include and Exclude are globs on file names (filepath.Match);
// an empty Include takes every file. JSONL files (.jsonl) give a document per line, from
// its "text" field; other files are one document each.
type PackOptions struct {
	Include, Exclude []string
	ShardChars       int    // characters of text per training shard, at most (0: one shard)
	ValDocs          int    // documents of the validation shard (fewer for a small corpus: see Pack)
	Seed             uint64 // of the shuffle that mixes documents across shards

	// MaxFileBytes leaves out files larger than this (0: none), and SkipGenerated files
	// that say they are generated (Go's "// Code generated ... DO NOT EDIT." line): in a
	// source tree these are tables and tests by the megabyte, which a model learns by
	// heart at the expense of the rest.
	MaxFileBytes  int64
	SkipGenerated bool
}

// generated matches Go's marker of generated files.
var generated = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

// Packed is what Pack made: the shard paths, the validation shard last, and how many
// documents went to training and to validation.
type Packed struct {
	Paths      []string
	Train, Val int
}

// Pack turns files and folders of text into shards with nanochat's schema in out: the
// documents are shuffled (seeded), the first ValDocs go to the validation shard, which is
// the last one (shard_{n:05d}.parquet, as nanochat takes the last file for validation), and
// the rest fill training shards of up to ShardChars characters. A corpus of fewer than
// 2·ValDocs documents validates on a tenth of them (at least one) instead, so that most of
// it trains.
func Pack(srcs []string, out string, opt PackOptions) (Packed, error) {
	var docs []string
	for _, src := range srcs {
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !wanted(d.Name(), opt) {
				return err
			}
			if info, err := d.Info(); err != nil || (opt.MaxFileBytes > 0 && info.Size() > opt.MaxFileBytes) {
				return err
			}
			got, err := readDocuments(path)
			if opt.SkipGenerated && len(got) == 1 && generated.MatchString(got[0]) {
				return err
			}
			docs = append(docs, got...)
			return err
		})
		if err != nil {
			return Packed{}, err
		}
	}
	nval := opt.ValDocs
	if nval > 0 && len(docs) < 2*nval {
		nval = max(1, len(docs)/10)
	}
	if len(docs) <= nval {
		return Packed{}, fmt.Errorf("pack: %d document(s) found; a corpus needs at least two, one to train on and one to validate", len(docs))
	}
	r := rand.New(rand.NewPCG(opt.Seed, 0))
	r.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
	val, train := docs[:nval], docs[nval:]
	var groups [][]string
	for start, chars := 0, 0; start < len(train); {
		end := start
		for chars = 0; end < len(train) && (end == start || opt.ShardChars <= 0 || chars+len(train[end]) <= opt.ShardChars); end++ {
			chars += len(train[end])
		}
		groups, start = append(groups, train[start:end]), end
	}
	if len(val) > 0 {
		groups = append(groups, val)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return Packed{}, err
	}
	p := Packed{Paths: make([]string, len(groups)), Train: len(train), Val: len(val)}
	for i, g := range groups {
		p.Paths[i] = filepath.Join(out, fmt.Sprintf("shard_%05d.parquet", i))
		if err := WriteShard(p.Paths[i], g); err != nil {
			return Packed{}, err
		}
	}
	return p, nil
}

func wanted(name string, opt PackOptions) bool {
	match := func(globs []string) bool {
		for _, g := range globs {
			if ok, _ := filepath.Match(g, name); ok {
				return true
			}
		}
		return false
	}
	return (len(opt.Include) == 0 || match(opt.Include)) && !match(opt.Exclude)
}

// readDocuments reads a file as one document, or a JSONL file as one per line.
func readDocuments(path string) ([]string, error) {
	if !strings.HasSuffix(path, ".jsonl") {
		b, err := os.ReadFile(path)
		return []string{string(b)}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var docs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Text == nil {
			return nil, fmt.Errorf("%s:%d: want a JSON object with a \"text\" string", path, line)
		}
		docs = append(docs, *rec.Text)
	}
	return docs, sc.Err()
}
