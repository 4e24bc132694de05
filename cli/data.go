package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gochat/loader"

	"github.com/urfave/cli/v2"
)

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "pretraining data as parquet shards",
		Subcommands: []*cli.Command{{
			Name:      "pack",
			Usage:     "turn text files, folders and JSONL into shards with nanochat's schema",
			ArgsUsage: "SRC...",
			Description: "Files are one document each, JSONL files one per line (their \"text\" field). The\n" +
				"documents are shuffled; the last shard holds --val-docs of them for validation.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "out", Usage: "output `DIR` (default $GOCHAT_HOME/base_data)"},
				&cli.StringSliceFlag{Name: "include", Usage: "file name `GLOB` to take (repeatable; default all)"},
				&cli.StringSliceFlag{Name: "exclude", Usage: "file name `GLOB` to leave out (repeatable)"},
				&cli.IntFlag{Name: "shard-chars", Value: 250_000_000, Usage: "characters per training shard at most"},
				&cli.IntFlag{Name: "val-docs", Value: 1024, Usage: "documents in the validation shard"},
				&cli.Uint64Flag{Name: "seed", Value: 42, Usage: "seed of the shuffle"},
				&cli.BoolFlag{Name: "go-src", Usage: "pack Go's own source tree ($(go env GOROOT)/src, *.go)"},
			},
			Action: runDataPack,
		}},
	}
}

// goSource is $(go env GOROOT)/src, or the GOROOT this binary was built with.
func goSource() string {
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if root := strings.TrimSpace(string(out)); root != "" {
			return filepath.Join(root, "src")
		}
	}
	return filepath.Join(runtime.GOROOT(), "src")
}

func runDataPack(c *cli.Context) error {
	srcs := c.Args().Slice()
	include := c.StringSlice("include")
	if c.Bool("go-src") {
		srcs = append(srcs, goSource())
		if len(include) == 0 {
			include = []string{"*.go"}
		}
	}
	if len(srcs) == 0 {
		return fmt.Errorf("data pack: give files or folders, or --go-src")
	}
	if c.Int("shard-chars") <= 0 || c.Int("val-docs") < 0 {
		return fmt.Errorf("data pack: --shard-chars must be positive and --val-docs not negative")
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Join(gochatHome(), "base_data")
	}
	start := time.Now()
	paths, err := loader.Pack(srcs, out, loader.PackOptions{Include: include, Exclude: c.StringSlice("exclude"),
		ShardChars: c.Int("shard-chars"), ValDocs: c.Int("val-docs"), Seed: c.Uint64("seed")})
	if err != nil {
		return err
	}
	fmt.Printf("packed %d shards into %s in %.1f s; validation: %s\n", len(paths), out, time.Since(start).Seconds(), filepath.Base(paths[len(paths)-1]))
	return nil
}
