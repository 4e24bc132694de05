package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gochat/loader"
	"gochat/tokenizer"

	"github.com/urfave/cli/v2"
)

// gochatHome is $GOCHAT_HOME, by default ~/.cache/gochat.
func gochatHome() string {
	if h := os.Getenv("GOCHAT_HOME"); h != "" {
		return h
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "gochat")
	}
	return ".gochat"
}

// homeDir is the folder flag name gives, by default the folder sub of $GOCHAT_HOME.
func homeDir(c *cli.Context, name, sub string) string {
	if d := c.String(name); d != "" {
		return d
	}
	return filepath.Join(gochatHome(), sub)
}

var (
	tokenizerFlag = &cli.StringFlag{Name: "tokenizer", Usage: "tokenizer `DIR` (default $GOCHAT_HOME/tokenizer)"}
	dataFlag      = &cli.StringFlag{Name: "data", Usage: "shard `DIR` (default $GOCHAT_HOME/base_data)"}
)

func tokenizerDir(c *cli.Context) string { return homeDir(c, "tokenizer", "tokenizer") }
func dataDir(c *cli.Context) string      { return homeDir(c, "data", "base_data") }

func tokCommand() *cli.Command {
	return &cli.Command{
		Name:  "tok",
		Usage: "train and use nanochat's byte-level BPE tokenizer",
		Subcommands: []*cli.Command{{
			Name:      "train",
			Usage:     "train a tokenizer on the training shards of --data, or on text files and folders (a document each)",
			ArgsUsage: "[PATH...]",
			Flags: []cli.Flag{dataFlag,
				vocabFlag(65536),
				&cli.IntFlag{Name: "max-chars", Value: 10_000_000_000, Usage: "characters of input to use at most"},
				&cli.IntFlag{Name: "doc-cap", Value: 10_000, Usage: "characters of each document to use at most"},
				&cli.StringFlag{Name: "out", Usage: "output `DIR` (default $GOCHAT_HOME/tokenizer)"},
			},
			Action: runTokTrain,
		}, {
			Name:      "encode",
			Usage:     "print the ids of a file's whole text, space-separated, on one line (no BOS)",
			ArgsUsage: "FILE",
			Flags:     []cli.Flag{tokenizerFlag},
			Action:    runTokEncode,
		}, {
			Name:   "decode",
			Usage:  "print the text of space-separated ids read from standard input",
			Flags:  []cli.Flag{tokenizerFlag},
			Action: runTokDecode,
		}, {
			Name:      "eval",
			Usage:     "bytes per token of files, for this tokenizer and others",
			ArgsUsage: "FILE...",
			Flags: []cli.Flag{tokenizerFlag,
				&cli.StringSliceFlag{Name: "compare", Usage: "another tokenizer `DIR` (repeatable)"}},
			Action: runTokEval,
		}},
	}
}

// readDocs reads every regular file under the paths, one document each.
func readDocs(paths []string) ([]string, error) {
	var docs []string
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			docs = append(docs, string(b))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// countShards feeds the training shards of a data folder to the counter a row group at a
// time until it has what it wants, and returns the number of documents read: the text is
// never held whole.
func countShards(dir string, counter *tokenizer.Counter) (int, error) {
	train, _, err := loader.Split(dir)
	if err != nil {
		return 0, err
	}
	docs, more := 0, true
	batch := make([]string, 0, loader.RowGroupSize)
	err = loader.EachDocument(train, func(d string) bool {
		if batch, docs = append(batch, d), docs+1; len(batch) == cap(batch) {
			more, batch = counter.Add(batch), batch[:0]
		}
		return more
	})
	if more && len(batch) > 0 {
		counter.Add(batch)
	}
	return docs, err
}

func runTokTrain(c *cli.Context) error {
	if err := positive(c, "vocab-size", "max-chars", "doc-cap"); err != nil {
		return err
	}
	opt := tokenizer.TrainOptions{VocabSize: c.Int("vocab-size"), DocCap: c.Int("doc-cap"), MaxChars: c.Int("max-chars")}
	_, _, err := trainTokenizer(opt, homeDir(c, "out", "tokenizer"), func(counter *tokenizer.Counter) (int, error) {
		if c.NArg() == 0 {
			return countShards(dataDir(c), counter)
		}
		docs, err := readDocs(c.Args().Slice())
		counter.Add(docs)
		return len(docs), err
	})
	return err
}

// trainTokenizer counts the documents that feed gives it, trains a tokenizer with a
// progress bar and saves it in out; it returns the tokenizer and the documents read.
func trainTokenizer(opt tokenizer.TrainOptions, out string, feed func(*tokenizer.Counter) (int, error)) (*tokenizer.Tokenizer, int, error) {
	start := time.Now()
	opt.Progress = progressBar("merges", 1, start)
	counter := tokenizer.NewCounter(opt)
	docs, err := feed(counter)
	if err != nil {
		return nil, 0, err
	}
	fmt.Fprintf(os.Stderr, "training a %d-token vocabulary on %d documents\n", opt.VocabSize, docs)
	tok, err := counter.Train()
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, 0, err
	}
	if err := tok.Save(out); err != nil {
		return nil, 0, err
	}
	fmt.Printf("trained %d tokens in %.1f s, saved to %s\n", tok.VocabSize(), time.Since(start).Seconds(), out)
	return tok, docs, nil
}

func runTokEncode(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("tok encode: give one file")
	}
	tok, err := tokenizer.Load(tokenizerDir(c))
	if err != nil {
		return err
	}
	text, err := os.ReadFile(c.Args().First())
	if err != nil {
		return err
	}
	ids := tok.Encode(string(text))
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i] = strconv.Itoa(id)
	}
	fmt.Println(strings.Join(strs, " "))
	return nil
}

func runTokDecode(c *cli.Context) error {
	tok, err := tokenizer.Load(tokenizerDir(c))
	if err != nil {
		return err
	}
	var ids []int
	sc := bufio.NewScanner(os.Stdin)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		id, err := strconv.Atoi(sc.Text())
		if err != nil {
			return fmt.Errorf("tok decode: %q is not an id", sc.Text())
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	text, err := tok.Decode(ids)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(text)
	return err
}

func runTokEval(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("tok eval: give the files to measure")
	}
	dirs := append([]string{tokenizerDir(c)}, c.StringSlice("compare")...)
	fmt.Println("| tokenizer | vocabulary | bytes | tokens | bytes/token |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, dir := range dirs {
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return err
		}
		var bytes, tokens int
		for _, path := range c.Args().Slice() {
			text, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			bytes += len(text)
			tokens += len(tok.Encode(string(text)))
		}
		fmt.Printf("| %s | %d | %d | %d | %.3f |\n", dir, tok.VocabSize(), bytes, tokens, float64(bytes)/float64(max(tokens, 1)))
	}
	return nil
}

// progressBar draws a one-line bar on stderr with the rate and the time left.
