package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gochat/loader"
	"gochat/tasks"

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
				&cli.Int64Flag{Name: "max-file-size", Usage: "leave out files of more `BYTES` (0: no limit; 100000 with --go-src)"},
				&cli.BoolFlag{Name: "skip-generated", Usage: "leave out files marked \"Code generated ... DO NOT EDIT.\" (on with --go-src)"},
				&cli.BoolFlag{Name: "go-src", Usage: "pack Go's own source tree ($(go env GOROOT)/src, *.go)"},
			},
			Action: runDataPack,
		}, {
			Name:  "download",
			Usage: "fetch nanochat's FineWeb-edu shards (shard_00000 … shard_01822, about 100 MB each), or with --task its chat datasets",
			Description: "Fetches the first -n shards and always the last, shard_01822, which validates. With --task it\n" +
				"fetches instead datasets of nanochat's mid-training, SFT, RL and chat evaluations, every split:\n" +
				"the HuggingFace ones as their parquet export into <out>/<name>/<split>/, the identity\n" +
				"conversations as their JSONL file. The names: " + strings.Join(tasks.Names(), ", ") + " (all: every one).\n" +
				"Files already complete are skipped; an interrupted download resumes where it stopped.",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "num-files", Aliases: []string{"n"}, Value: -1, Usage: "training shards to fetch (-1: all 1,822)"},
				&cli.StringSliceFlag{Name: "task", Usage: "chat dataset `NAME` to fetch instead of shards (repeatable; all: every one)"},
				&cli.IntFlag{Name: "workers", Aliases: []string{"w"}, Value: 4, Usage: "files fetched at once"},
				&cli.StringFlag{Name: "base-url", Value: loader.FineWebURL, Usage: "`URL` the shards are under; with --task, in place of " + tasks.HuggingFace + " (default under $" + hubEnv + " when it names a mirror)"},
				&cli.StringFlag{Name: "identity-url", Value: tasks.IdentityURL, EnvVars: []string{"GOCHAT_IDENTITY_URL"}, Usage: "`URL` of the identity conversations (--task identity)"},
				&cli.StringFlag{Name: "out", Usage: "output `DIR` (default $GOCHAT_HOME/base_data; with --task $GOCHAT_HOME/tasks)"},
			},
			Action: runDataDownload,
		}},
	}
}

// hubEnv names a mirror of the HuggingFace Hub to fetch FineWeb's shards and the chat
// datasets from, as huggingface_hub reads it.
const hubEnv = "HF_ENDPOINT"

// goSrcMaxFile is the largest file --go-src packs: the larger ones are tables and
// generated tests (a third of the tree's bytes), which a small model learns by heart.
const goSrcMaxFile = 100_000

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
	maxBytes, skipGenerated := c.Int64("max-file-size"), c.Bool("skip-generated")
	if c.Bool("go-src") {
		srcs = append(srcs, goSource())
		if len(include) == 0 {
			include = []string{"*.go"}
		}
		if !c.IsSet("max-file-size") {
			maxBytes = goSrcMaxFile
		}
		if !c.IsSet("skip-generated") {
			skipGenerated = true
		}
	}
	if len(srcs) == 0 {
		return fmt.Errorf("data pack: give files or folders, or --go-src")
	}
	if c.Int("shard-chars") <= 0 || c.Int("val-docs") < 0 {
		return fmt.Errorf("data pack: --shard-chars must be positive and --val-docs not negative")
	}
	return pack(srcs, homeDir(c, "out", "base_data"), loader.PackOptions{Include: include, Exclude: c.StringSlice("exclude"),
		ShardChars: c.Int("shard-chars"), ValDocs: c.Int("val-docs"), Seed: c.Uint64("seed"),
		MaxFileBytes: maxBytes, SkipGenerated: skipGenerated})
}

// pack packs srcs into shards in out and says what it made.
func pack(srcs []string, out string, opt loader.PackOptions) error {
	start := time.Now()
	p, err := loader.Pack(srcs, out, opt)
	if err != nil {
		return err
	}
	if p.Val < opt.ValDocs {
		fmt.Printf("the corpus has %d documents: %d of them validate, not the %d of --val-docs, so that most of it trains\n", p.Train+p.Val, p.Val, opt.ValDocs)
	}
	fmt.Printf("packed %d documents into %d shards in %s in %.1f s; validation (%d documents): %s\n",
		p.Train+p.Val, len(p.Paths), out, time.Since(start).Seconds(), p.Val, filepath.Base(p.Paths[len(p.Paths)-1]))
	return nil
}

func runDataDownload(c *cli.Context) error {
	if c.IsSet("task") {
		return runTaskDownload(c)
	}
	n := c.Int("num-files")
	if n < 0 || n > loader.FineWebShards-1 {
		n = loader.FineWebShards - 1
	}
	if err := positive(c, "workers"); err != nil {
		return err
	}
	indices := make([]int, 0, n+1)
	for i := range n {
		indices = append(indices, i)
	}
	indices = append(indices, loader.FineWebShards-1)
	out := homeDir(c, "out", "base_data")
	took, err := download(c.Context, "data download", fmt.Sprintf("%d shards into %s (validation: %s)", len(indices), out, loader.ShardName(loader.FineWebShards-1)),
		func(ctx context.Context, opt loader.DownloadOptions) error {
			opt.BaseURL, opt.Workers = c.String("base-url"), c.Int("workers")
			if mirror := os.Getenv(hubEnv); mirror != "" && !c.IsSet("base-url") {
				opt.BaseURL = strings.TrimSuffix(mirror, "/") + loader.FineWebPath
			}
			return loader.Download(ctx, out, indices, opt)
		})
	if err != nil {
		return err
	}
	fmt.Printf("%d shards in %s after %.1f s; %s validates\n", len(indices), out, took.Seconds(), loader.ShardName(loader.FineWebShards-1))
	return nil
}

// download runs fetch with Ctrl-C and a progress bar in MB, saying what it fetches; an
// interrupted download (which resumes) says to run the command again. cmd names the
// command in the errors.
func download(parent context.Context, cmd, what string, fetch func(ctx context.Context, opt loader.DownloadOptions) error) (time.Duration, error) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt)
	defer stop()
	start := time.Now()
	bar := progressBar("MB", 1e6, start)
	fmt.Fprintf(os.Stderr, "fetching %s\n", what)
	err := fetch(ctx, loader.DownloadOptions{Progress: func(done, total int64) { bar(int(done), int(total)) }})
	fmt.Fprintln(os.Stderr)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%s: interrupted; run it again to resume", cmd)
		}
		return 0, fmt.Errorf("%s: %w", cmd, err)
	}
	return time.Since(start), nil
}

// runTaskDownload is `data download --task`: the named chat datasets into --out.
func runTaskDownload(c *cli.Context) error {
	if c.IsSet("num-files") {
		return fmt.Errorf("data download: --num-files counts shards; --task fetches whole datasets")
	}
	if err := positive(c, "workers"); err != nil {
		return err
	}
	names := c.StringSlice("task")
	if slices.Contains(names, "all") {
		names = tasks.Names()
	}
	for _, name := range names {
		if _, err := tasks.Lookup(name); err != nil {
			return fmt.Errorf("data download --task: %w (or all)", err)
		}
	}
	src := tasks.Sources{Identity: c.String("identity-url"), HuggingFace: os.Getenv(hubEnv)}
	if c.IsSet("base-url") {
		src.HuggingFace = c.String("base-url")
	}
	out := homeDir(c, "out", "tasks")
	took, err := download(c.Context, "data download", fmt.Sprintf("%s into %s", strings.Join(names, ", "), out),
		func(ctx context.Context, opt loader.DownloadOptions) error {
			opt.Workers = c.Int("workers")
			return tasks.Download(ctx, out, names, src, opt)
		})
	if err != nil {
		return err
	}
	fmt.Printf("%s in %s after %.1f s\n", strings.Join(names, ", "), out, took.Seconds())
	return nil
}
