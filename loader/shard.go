// Package loader reads and writes pretraining data: parquet shards with nanochat's schema
// (one string column "text", a document per row, row groups of 1024 documents, zstd).
package loader

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"gochat/internal/atomicfile"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// RowGroupSize is the number of documents per row group in nanochat's shards.
const RowGroupSize = 1024

// document is a row of a shard.
type document struct {
	Text string `parquet:"text"`
}

// WriteShard writes docs as a shard with nanochat's schema, atomically: a reader never sees
// a partial file at path.
func WriteShard(path string, docs []string) error { return WriteShardGroups(path, docs, RowGroupSize) }

// WriteShardGroups is WriteShard with perGroup documents per row group (tests that need
// small row groups, to share them out over ranks).
func WriteShardGroups(path string, docs []string, perGroup int) error {
	return atomicfile.Write(path, func(f *os.File) error {
		w := parquet.NewGenericWriter[document](f,
			parquet.MaxRowsPerRowGroup(int64(perGroup)), parquet.Compression(&zstd.Codec{}))
		rows := make([]document, 0, perGroup)
		for i, d := range docs {
			rows = append(rows, document{Text: d})
			if len(rows) == perGroup || i == len(docs)-1 {
				if _, err := w.Write(rows); err != nil {
					return err
				}
				if err := w.Flush(); err != nil { // one row group per perGroup documents
					return err
				}
				rows = rows[:0]
			}
		}
		return w.Close()
	})
}

// Shard is an open shard whose documents are read one row group at a time.
type Shard struct {
	file   *os.File
	pf     *parquet.File
	column int
}

// OpenShard opens a parquet file and checks that it has a string column "text".
func OpenShard(path string) (*Shard, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a readable parquet file: %w", path, err)
	}
	col, ok := pf.Schema().Lookup("text")
	if !ok || col.Node.Type().Kind() != parquet.ByteArray {
		f.Close()
		return nil, fmt.Errorf("%s: no string column \"text\"", path)
	}
	return &Shard{file: f, pf: pf, column: col.ColumnIndex}, nil
}

// RowGroups is the number of row groups.
func (s *Shard) RowGroups() int { return len(s.pf.RowGroups()) }

// Documents is the number of documents.
func (s *Shard) Documents() int64 { return s.pf.NumRows() }

// ReadRowGroup returns the documents of row group i.
func (s *Shard) ReadRowGroup(i int) ([]string, error) {
	groups := s.pf.RowGroups()
	if i < 0 || i >= len(groups) {
		return nil, fmt.Errorf("row group %d of %d", i, len(groups))
	}
	pages := groups[i].ColumnChunks()[s.column].Pages()
	defer pages.Close()
	docs := make([]string, 0, groups[i].NumRows())
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("row group %d: %w", i, err)
		}
		values := make([]parquet.Value, page.NumValues())
		n, err := page.Values().ReadValues(values)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("row group %d: %w", i, err)
		}
		for _, v := range values[:n] {
			docs = append(docs, string(v.ByteArray()))
		}
	}
	return docs, nil
}

// Close closes the file.
func (s *Shard) Close() error { return s.file.Close() }

// Split lists the shards of a data folder (its *.parquet files in name order) and splits
// them: the validation shard is FineWeb's last (shard_01822.parquet) when the folder has
// it, which `gochat data download` always fetches, otherwise the last file, which is where
// `gochat data pack` puts it. Every other shard trains.
func Split(dir string) (train []string, val string, err error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil {
		return nil, "", err
	}
	if len(paths) == 0 {
		return nil, "", fmt.Errorf("no shards in %s: run `gochat data download` or `gochat data pack`", dir)
	}
	if len(paths) == 1 {
		return nil, "", fmt.Errorf("%s has one shard; training needs two (the last validates)", dir)
	}
	sort.Strings(paths)
	v := len(paths) - 1
	if k := slices.Index(paths, filepath.Join(dir, ShardName(FineWebShards-1))); k >= 0 {
		v = k
	}
	return slices.Delete(slices.Clone(paths), v, v+1), paths[v], nil
}

// EachDocument calls fn with the documents of the shards in order, a row group at a time,
// until fn returns false.
func EachDocument(paths []string, fn func(doc string) bool) error {
	return EachRowGroup(paths, func(docs []string) bool {
		for _, d := range docs {
			if !fn(d) {
				return false
			}
		}
		return true
	})
}

// EachRowGroup calls fn with the documents of each row group of the shards in order, until
// fn returns false.
func EachRowGroup(paths []string, fn func(docs []string) bool) error {
	for _, p := range paths {
		s, err := OpenShard(p)
		if err != nil {
			return err
		}
		for g := range s.RowGroups() {
			docs, err := s.ReadRowGroup(g)
			if err != nil {
				s.Close()
				return fmt.Errorf("%s: %w", p, err)
			}
			if !fn(docs) {
				return s.Close()
			}
		}
		s.Close()
	}
	return nil
}
