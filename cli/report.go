package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gochat/internal/atomicfile"
	"gochat/loader"
	"gochat/tokenizer"
	"gochat/train"
)

// report gathers what the demo's report card shows: nanochat's report.md, ours.
type report struct {
	start      time.Time
	data       string
	tok        *tokenizer.Tokenizer
	tokDir     string
	tokTrained string
	settings   train.Settings
	result     *train.Result
	dir        string // the run's folder, with its plots
	engine     string
}

// write puts report.md and the run's plots in dir and returns the report's path.
func (r *report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, plot := range []string{"loss.png", "val_bpb.png"} {
		raw, err := os.ReadFile(filepath.Join(r.dir, plot))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, plot), raw, 0o644); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	res, s, p := r.result, r.settings, r.result.Plan
	fmt.Fprintf(&b, "# gochat report card\n\nWritten by `gochat demo` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))

	fmt.Fprintf(&b, "## Machine\n\n| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| CPU | %s, %d processors used |\n", cpuModel(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "| engine | %s |\n| Go | %s %s/%s |\n\n", r.engine, runtime.Version(), runtime.GOOS, runtime.GOARCH)

	train, val, err := loader.Split(r.data)
	if err != nil {
		return "", err
	}
	bpt, err := bytesPerToken(r.tok, val)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "## Data and tokenizer\n\n| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| shards | %s: %d for training, %s validates |\n", r.data, len(train), filepath.Base(val))
	fmt.Fprintf(&b, "| tokenizer | %s: %d tokens, %s |\n", r.tokDir, r.tok.VocabSize(), r.tokTrained)
	fmt.Fprintf(&b, "| compression | %.2f bytes per token on the validation shard |\n\n", bpt)

	c := p.Model
	fmt.Fprintf(&b, "## Model\n\n| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| depth | %d (n_embd %d, %d heads of %d, sequence %d) |\n", c.NLayer, c.NEmbd, c.NHead, c.HeadDim(), c.SequenceLen)
	fmt.Fprintf(&b, "| parameters | %d |\n| FLOPs per token | %.3g |\n\n", p.Params, p.FLOPsPerToken)

	tokens := res.Step * p.TokensPerStep
	fmt.Fprintf(&b, "## Training\n\n| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| steps | %d of %d tokens (%d × %d), %d tokens in all (%.2f per parameter) |\n",
		res.Step, p.TokensPerStep, s.DeviceBatchSize, s.MaxSeqLen, tokens, float64(tokens)/float64(p.Params))
	fmt.Fprintf(&b, "| time | %.1f minutes of a %.0f-second budget |\n", res.Seconds/60, s.TimeBudget)
	fmt.Fprintf(&b, "| speed | %.0f tok/s, MFU %.1f%% of %s, %.2f%% of step time waiting for data |\n", res.TokPerSec, res.MFU, res.Peak.What, 100*res.DataWait)
	fmt.Fprintf(&b, "| final training loss | %.4f (EMA) |\n", res.Loss)
	if res.Interrupted {
		fmt.Fprintf(&b, "| note | interrupted by the user |\n")
	}
	fmt.Fprintf(&b, "\n![training loss](loss.png)\n\n")

	fmt.Fprintf(&b, "## Evaluation\n\n| | |\n| --- | --- |\n| validation bpb | %.4f at the end, %.4f at best |\n\n![validation bpb](val_bpb.png)\n\n", res.ValBPB, res.MinValBPB)

	fmt.Fprintf(&b, "## Samples\n\nGreedy, nanochat's prompts and three of Go:\n\n")
	for _, sample := range res.Samples {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", strings.TrimRight(sample, "\n"))
	}
	fmt.Fprintf(&b, "Total time of the demo: %.1f minutes.\n", time.Since(r.start).Minutes())

	path := filepath.Join(dir, "report.md")
	return path, atomicfile.Write(path, func(f *os.File) error {
		_, err := f.WriteString(b.String())
		return err
	})
}

// bytesPerToken is the tokenizer's compression on a shard's documents.
func bytesPerToken(tok *tokenizer.Tokenizer, shard string) (float64, error) {
	var bytes, tokens int
	err := loader.EachDocument([]string{shard}, func(d string) bool {
		bytes += len(d)
		tokens += len(tok.Encode(d))
		return bytes < 50_000_000
	})
	return float64(bytes) / float64(max(tokens, 1)), err
}

// cpuModel is the processor's name, where the system says it.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return runtime.GOARCH
}
