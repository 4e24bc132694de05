// Package report is nanochat's report card (nanochat/report.py): each command that
// finishes (training a stage, evaluating a model) logs its section into the report folder,
// $GOCHAT_HOME/report; Generate assembles report.md from them: a header about the machine
// and the program, the sections in the pipeline's order, and the summary table of the
// evaluations by stage (BASE, MID, SFT, RL). Reset starts a new card.
package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"gochat/internal/atomicfile"
	"gochat/internal/measure"
)

// Section is what one command reports.
type Section struct {
	Name  string      `json:"name"`  // its file and its place in the card: one of Order, or another name
	Title string      `json:"title"` // its heading
	Rows  [][2]string `json:"rows"`  // a table of what it did and measured
	Text  string      `json:"text,omitempty"`
	// Stage and Metrics fill the summary table: the stage's column (base, mid, sft or rl)
	// gets the metrics named in Summary.
	Stage   string             `json:"stage,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Plots   []string           `json:"plots,omitempty"` // images beside the card, by file name
	Time    time.Time          `json:"time"`
}

// Order is where the pipeline's sections go in the card; others follow, by time.
var Order = []string{"base-training", "base-eval", "mid-training", "chat-eval-mid", "chat-sft", "chat-eval-sft", "chat-rl", "chat-eval-rl"}

// Summary are the summary table's rows: the metrics by name, as nanochat's card has them.
var Summary = []string{"CORE", "ARC-Easy", "ARC-Challenge", "MMLU", "GSM8K", "HumanEval", "ChatCORE"}

// stages are the summary table's columns.
var stages = []string{"base", "mid", "sft", "rl"}

// Log writes s into the report folder dir, atomically, with its plots (paths of images)
// copied beside it as <name>-<file>; it replaces an earlier section of its name.
func Log(dir string, s Section, plots ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range plots {
		raw, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a run too short to plot
		}
		if err != nil {
			return err
		}
		name := s.Name + "-" + filepath.Base(p)
		if err := atomicfile.Write(filepath.Join(dir, name), func(f *os.File) error { _, err := f.Write(raw); return err }); err != nil {
			return err
		}
		s.Plots = append(s.Plots, name)
	}
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, s.Name+".json"), func(f *os.File) error { _, err := f.Write(raw); return err })
}

// Sections reads the sections logged in dir, in the card's order.
func Sections(dir string) ([]Section, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Section
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s Section
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("report section %s: %w", f, err)
		}
		out = append(out, s)
	}
	rank := func(s Section) int {
		if i := slices.Index(Order, s.Name); i >= 0 {
			return i
		}
		return len(Order)
	}
	slices.SortStableFunc(out, func(a, b Section) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return a.Time.Compare(b.Time)
	})
	return out, nil
}

// Generate writes dir/report.md from the sections logged there and returns its path.
func Generate(dir string) (string, error) {
	sections, err := Sections(dir)
	if err != nil {
		return "", err
	}
	if len(sections) == 0 {
		return "", fmt.Errorf("no sections in %s yet: training and evaluation commands add them as they finish", dir)
	}
	var b strings.Builder
	b.WriteString("# gochat report card\n\n")
	header(&b, sections)
	for _, s := range sections {
		fmt.Fprintf(&b, "## %s\n\n", s.Title)
		if len(s.Rows) > 0 {
			b.WriteString("| | |\n| --- | --- |\n")
			for _, r := range s.Rows {
				fmt.Fprintf(&b, "| %s | %s |\n", r[0], r[1])
			}
			b.WriteString("\n")
		}
		for _, p := range s.Plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(p, filepath.Ext(p)), p)
		}
		if s.Text != "" {
			b.WriteString(strings.TrimRight(s.Text, "\n") + "\n\n")
		}
	}
	summary(&b, sections)
	path := filepath.Join(dir, "report.md")
	return path, atomicfile.Write(path, func(f *os.File) error { _, err := f.WriteString(b.String()); return err })
}

// Reset removes the sections, plots and card of dir: the next section starts a new card.
func Reset(dir string) error { return os.RemoveAll(dir) }

// header is the card's first table: when, which program, which machine.
func header(b *strings.Builder, sections []Section) {
	first, last := sections[0].Time, sections[0].Time
	for _, s := range sections {
		if s.Time.Before(first) {
			first = s.Time
		}
		if s.Time.After(last) {
			last = s.Time
		}
	}
	b.WriteString("| | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| generated | %s |\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "| sections | logged from %s to %s |\n", first.UTC().Format("2006-01-02 15:04"), last.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "| gochat | %s |\n", version())
	fmt.Fprintf(b, "| Go | %s %s/%s |\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(b, "| CPU | %s, %d processors |\n", CPUModel(), runtime.NumCPU())
	if mem := measure.TotalMemory(); mem > 0 {
		fmt.Fprintf(b, "| memory | %.1f GiB |\n", float64(mem)/(1<<30))
	}
	if files, lines := linesOfCode("."); files > 0 {
		fmt.Fprintf(b, "| code | %d lines of Go in %d files (this checkout) |\n", lines, files)
	}
	b.WriteString("\n")
}

// summary is nanochat's closing table: each metric of Summary by stage.
func summary(b *strings.Builder, sections []Section) {
	cells := map[string]map[string]float64{}
	for _, s := range sections {
		for name, v := range s.Metrics {
			if cells[name] == nil {
				cells[name] = map[string]float64{}
			}
			cells[name][s.Stage] = v
		}
	}
	if len(cells) == 0 {
		return
	}
	b.WriteString("## Summary\n\n| metric | BASE | MID | SFT | RL |\n| --- | --- | --- | --- | --- |\n")
	for _, name := range Summary {
		fmt.Fprintf(b, "| %s |", name)
		for _, st := range stages {
			if v, ok := cells[name][st]; ok && !math.IsNaN(v) {
				fmt.Fprintf(b, " %.4f |", v)
			} else {
				b.WriteString(" - |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// version is the program's module version and commit, as the build recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown build"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += ", commit " + s.Value[:min(len(s.Value), 12)]
		case "vcs.modified":
			if s.Value == "true" {
				v += " (with uncommitted changes)"
			}
		}
	}
	return v
}

// linesOfCode counts the Go files and their lines under dir when dir is gochat's module
// (the folder the README's commands run in), else 0.
func linesOfCode(dir string) (files, lines int) {
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module gochat\n") {
		return 0, 0
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != dir) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			raw, err := os.ReadFile(path)
			if err == nil {
				files, lines = files+1, lines+strings.Count(string(raw), "\n")
			}
		}
		return nil
	})
	return files, lines
}

// CPUModel is the processor's name, where the system says it.
func CPUModel() string {
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
