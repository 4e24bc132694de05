package tasks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Dataset is one of the datasets nanochat's chat stages (mid-training, SFT, RL and the chat
// evaluations) read, by its short name. A dataset from HuggingFace is read from its parquet
// export, the files of a split in <root>/<name>/<split>/ (NNNN.parquet, read in order); the
// identity conversations are one JSONL file, <root>/identity/identity_conversations.jsonl.
type Dataset struct {
	Name   string
	Repo   string // the HuggingFace dataset; "" for the identity conversations
	URL    string // where a dataset that is one file is served; "" for HuggingFace's
	Splits []Split
}

// Split is a split of a dataset: its name here, the HuggingFace config and split it is
// published as, and how its files are read.
type Split struct {
	Name, Config, HFSplit string
	layout                any                             // a row of its parquet files, as parquet-go reads one
	read                  func(path string) (Task, error) // one file's rows as a task
}

// IdentityURL serves nanochat's identity conversations: who the model is, as JSONL.
const IdentityURL = "https://karpathy-public.s3.us-west-2.amazonaws.com/identity_conversations.jsonl"

// readMMLUAuxiliary reads a parquet file of cais/mmlu's auxiliary_train as a task.
func readMMLUAuxiliary(path string) (Task, error) {
	rows, err := readRows(path, func(f MMLUAuxiliaryFile) MMLURow { return f.Train.row() })
	return Rows[MMLURow]{Rows: rows, Convert: MMLU}, err
}

// splits are the splits of one config whose files have one layout.
func splits(config string, layout any, read func(string) (Task, error), names ...string) []Split {
	out := make([]Split, len(names))
	for i, n := range names {
		out[i] = Split{Name: n, Config: config, HFSplit: n, layout: layout, read: read}
	}
	return out
}

// Catalog is every dataset nanochat's chat stages read, in the order `--task all` fetches
// them.
var Catalog = []Dataset{
	{Name: "smoltalk", Repo: "HuggingFaceTB/smol-smoltalk",
		Splits: splits("default", SmolTalkFile{}, ReadSmolTalk, "train", "test")},
	{Name: "mmlu", Repo: "cais/mmlu",
		Splits: append(splits("all", MMLUFile{}, ReadMMLU, "test", "validation", "dev"),
			Split{Name: "auxiliary_train", Config: "auxiliary_train", HFSplit: "train", layout: MMLUAuxiliaryFile{}, read: readMMLUAuxiliary})},
	{Name: "gsm8k", Repo: "openai/gsm8k",
		Splits: splits("main", GSM8KFile{}, ReadGSM8K, "train", "test")},
	{Name: "arc-easy", Repo: "allenai/ai2_arc",
		Splits: splits("ARC-Easy", ARCFile{}, ReadARC, "train", "validation", "test")},
	{Name: "arc-challenge", Repo: "allenai/ai2_arc",
		Splits: splits("ARC-Challenge", ARCFile{}, ReadARC, "train", "validation", "test")},
	{Name: "humaneval", Repo: "openai/openai_humaneval",
		Splits: splits("openai_humaneval", HumanEvalFile{}, ReadHumanEval, "test")},
	{Name: "identity", URL: IdentityURL,
		Splits: []Split{{Name: "train", read: ReadCustomJSON}}},
}

// Names are the catalog's dataset names.
func Names() []string {
	names := make([]string, len(Catalog))
	for i, d := range Catalog {
		names[i] = d.Name
	}
	return names
}

// Lookup finds a dataset of the catalog by name; the error lists the known ones.
func Lookup(name string) (Dataset, error) {
	for _, d := range Catalog {
		if d.Name == name {
			return d, nil
		}
	}
	return Dataset{}, fmt.Errorf("no dataset %q; the datasets are %s", name, strings.Join(Names(), ", "))
}

// Split finds a split of d by name; the error lists d's splits.
func (d Dataset) Split(name string) (Split, error) {
	var names []string
	for _, s := range d.Splits {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Split{}, fmt.Errorf("%s has no split %q; its splits are %s", d.Name, name, strings.Join(names, ", "))
}

// Dir is where a split of a HuggingFace dataset lies under root: <root>/<name>/<split>.
func (d Dataset) Dir(root string, s Split) string { return filepath.Join(root, d.Name, s.Name) }

// File is where a dataset that is one file lies under root: <root>/<name>/<its URL's base>.
func (d Dataset) File(root string) string { return filepath.Join(root, d.Name, path.Base(d.URL)) }

// Open reads a split of a dataset of the catalog, downloaded under root, as a task: the
// rows of all its files in order. Each parquet file is checked to have the columns of the
// dataset's layout first, since parquet-go fills a missing column with zero values.
func Open(root, name, split string) (Task, error) {
	d, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	s, err := d.Split(split)
	if err != nil {
		return nil, err
	}
	missing := func(where string) error {
		if _, err := os.Stat(where + partialSuffix); err == nil {
			return fmt.Errorf("%s %s: %s is missing (an interrupted download is in %s%s); run gochat data download --task %s to finish it",
				name, split, where, where, partialSuffix, name)
		}
		return fmt.Errorf("%s %s: %s is missing; run gochat data download --task %s", name, split, where, name)
	}
	if d.Repo == "" {
		file := d.File(root)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil, missing(file)
		}
		return s.read(file)
	}
	dir := d.Dir(root, s)
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, missing(dir)
	}
	var seq Sequence
	for _, file := range files {
		if err := checkColumns(file, s.layout); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		t, err := s.read(file)
		if err != nil {
			return nil, err
		}
		seq = append(seq, t)
	}
	if len(seq) == 1 {
		return seq[0], nil
	}
	return seq, nil
}

// checkColumns checks that a parquet file has every column of layout (a row as parquet-go
// reads it), of its physical type, and says which is missing when one is (the caller
// names the file).
func checkColumns(path string, layout any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		return fmt.Errorf("not a readable parquet file: %w", err)
	}
	want := parquet.SchemaOf(layout)
	for _, column := range want.Columns() {
		name := strings.Join(column, ".")
		got, ok := pf.Schema().Lookup(column...)
		if !ok {
			return fmt.Errorf("no column %s (it has %s)", name, strings.Join(columnNames(pf.Schema()), ", "))
		}
		wantLeaf, _ := want.Lookup(column...)
		if g, w := got.Node.Type().Kind(), wantLeaf.Node.Type().Kind(); g != w {
			return fmt.Errorf("column %s is %s, want %s", name, g, w)
		}
	}
	return nil
}

// columnNames are a schema's leaf columns, dotted.
func columnNames(s *parquet.Schema) []string {
	var names []string
	for _, c := range s.Columns() {
		names = append(names, strings.Join(c, "."))
	}
	return names
}
