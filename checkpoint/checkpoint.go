// Package checkpoint keeps training runs on disk as nanochat does: a folder per model tag
// (base_checkpoints/d12/) holding, for each saved step, the weights, the optimizer state and
// a meta_{step:06d}.json. gochat writes the weights as safetensors under nanochat's names and
// PyTorch's layout; ImportPT and ExportPT convert to and from nanochat's own .pt files.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gochat/graph"
	"gochat/internal/atomicfile"
	"gochat/loader"
	"gochat/safetensors"
)

// Meta is meta_{step:06d}.json: nanochat's fields first, then what gochat needs to resume a
// run exactly and to refuse a mismatched one.
type Meta struct {
	Step            int            `json:"step"`
	ValBPB          *float64       `json:"val_bpb"` // null before the first evaluation
	ModelConfig     graph.Config   `json:"model_config"`
	UserConfig      map[string]any `json:"user_config"` // the run's settings, by flag name
	DeviceBatchSize int            `json:"device_batch_size"`
	MaxSeqLen       int            `json:"max_seq_len"`

	NumIterations int             `json:"num_iterations"` // the run's horizon
	Loader        loader.Position `json:"loader_position"`
	Seed          uint64          `json:"seed"` // of the initialisation; nothing else draws random numbers
	Tokenizer     Tokenizer       `json:"tokenizer"`
	Loop          json.RawMessage `json:"loop,omitempty"` // the training loop's own state (train.Loop), as it wrote it
}

// Tokenizer names the tokenizer a run used: where it was and a fingerprint of its
// vocabulary, which must match when the run resumes or is evaluated.
type Tokenizer struct {
	Dir         string `json:"dir"`
	Fingerprint string `json:"fingerprint"`
}

// Step files of a run folder.
func modelFile(dir string, step int) string {
	return filepath.Join(dir, fmt.Sprintf("model_%06d.safetensors", step))
}
func optimFile(dir string, step int) string {
	return filepath.Join(dir, fmt.Sprintf("optim_%06d.safetensors", step))
}

// Int8File is where `gochat checkpoint quantize` keeps step's int8 weights
// (graph.Cached.WriteInt8).
func Int8File(dir string, step int) string {
	return filepath.Join(dir, fmt.Sprintf("model_%06d.int8.safetensors", step))
}
func metaFile(dir string, step int) string {
	return filepath.Join(dir, fmt.Sprintf("meta_%06d.json", step))
}

// Save writes step's weights, optimizer state (skipped when nil) and meta into dir. Each
// file is written atomically and the meta file last, so a step whose meta exists is whole:
// an interrupted save leaves at most unreferenced files that the next save overwrites.
func Save(dir string, weights graph.Weights, optim map[string]safetensors.Tensor, meta Meta) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	// int8 weights of an earlier save of this step would no longer be these weights'.
	if err := os.Remove(Int8File(dir, meta.Step)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := meta.ModelConfig.WriteWeights(modelFile(dir, meta.Step), weights); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if optim != nil {
		if err := safetensors.Write(optimFile(dir, meta.Step), optim, nil); err != nil {
			return fmt.Errorf("checkpoint: optimizer state: %w", err)
		}
	}
	return writeMeta(dir, meta)
}

// UpdateMeta rewrites the meta file of a step already saved (what an evaluation after the
// save adds), atomically.
func UpdateMeta(dir string, meta Meta) error {
	if _, err := os.Stat(modelFile(dir, meta.Step)); err != nil {
		return fmt.Errorf("checkpoint: step %d is not saved in %s: %w", meta.Step, dir, err)
	}
	return writeMeta(dir, meta)
}

// ValidTag checks that a run's tag is a plain folder name: not empty, no path separator,
// not "." or "..", so that a run stays inside its checkpoints folder.
func ValidTag(tag string) error {
	if tag == "" || tag == "." || tag == ".." || strings.ContainsAny(tag, `/\`) || strings.ContainsRune(tag, 0) {
		return fmt.Errorf("model tag %q is not a plain folder name (letters, digits, '-', '_', '.')", tag)
	}
	return nil
}

// writeMeta writes a step's meta file, atomically.
func writeMeta(dir string, meta Meta) error {
	raw, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(metaFile(dir, meta.Step), func(f *os.File) error {
		_, err := f.Write(append(raw, '\n'))
		return err
	})
}

// Steps lists the saved steps of a run folder, in increasing order.
func Steps(dir string) ([]int, error) {
	names, err := filepath.Glob(filepath.Join(dir, "meta_*.json"))
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, n := range names {
		s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(n), "meta_"), ".json")
		if step, err := strconv.Atoi(s); err == nil && step >= 0 {
			steps = append(steps, step)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// LastStep is the highest saved step of a run folder.
func LastStep(dir string) (int, error) {
	steps, err := Steps(dir)
	if err != nil {
		return 0, err
	}
	if len(steps) == 0 {
		return 0, fmt.Errorf("checkpoint: no saved steps in %s", dir)
	}
	return steps[len(steps)-1], nil
}

// LoadLast reads the highest saved step of a run folder, as Load does.
func LoadLast(dir string, withOptim bool) (*Checkpoint, error) {
	step, err := LastStep(dir)
	if err != nil {
		return nil, err
	}
	return Load(dir, step, withOptim)
}

// Tags lists the run folders of a checkpoints folder that hold a saved step, by name.
func Tags(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, e := range entries {
		if steps, _ := Steps(filepath.Join(root, e.Name())); e.IsDir() && len(steps) > 0 {
			tags = append(tags, e.Name())
		}
	}
	return tags, nil
}

// LargestTag finds the model tag of a checkpoints folder (such as base_checkpoints) that
// nanochat would load: the d<N> folder with the largest N, or else the most recently
// modified folder.
func LargestTag(root string) (string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return "", fmt.Errorf("checkpoint: no checkpoints in %s", root)
	}
	if err != nil {
		return "", err
	}
	best, bestDepth := "", -1
	var newest string
	var newestTime int64
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if d, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "d")); err == nil && strings.HasPrefix(e.Name(), "d") && d > bestDepth {
			best, bestDepth = e.Name(), d
		}
		if info, err := e.Info(); err == nil && info.ModTime().UnixNano() > newestTime {
			newest, newestTime = e.Name(), info.ModTime().UnixNano()
		}
	}
	if best == "" {
		best = newest
	}
	if best == "" {
		return "", fmt.Errorf("checkpoint: no model folders in %s", root)
	}
	return best, nil
}

// Checkpoint is one loaded step.
type Checkpoint struct {
	Meta    Meta
	Weights graph.Weights
	Optim   map[string]safetensors.Tensor // nil when the step has no optimizer state
}

// ReadMeta reads step's meta file.
func ReadMeta(dir string, step int) (Meta, error) {
	var m Meta
	raw, err := os.ReadFile(metaFile(dir, step))
	if errors.Is(err, fs.ErrNotExist) {
		steps, _ := Steps(dir)
		return m, fmt.Errorf("checkpoint: no step %d in %s (saved steps: %v)", step, dir, steps)
	}
	if err != nil {
		return m, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("checkpoint: %s: %w", metaFile(dir, step), err)
	}
	if err := m.ModelConfig.Validate(); err != nil {
		return m, fmt.Errorf("checkpoint: %s: %w", metaFile(dir, step), err)
	}
	if m.Step != step {
		return m, fmt.Errorf("checkpoint: %s says it is step %d", metaFile(dir, step), m.Step)
	}
	return m, nil
}

// Load reads step of a run folder, checking the weights against the meta's model config.
// withOptim also reads the optimizer state, which must then exist.
func Load(dir string, step int, withOptim bool) (*Checkpoint, error) {
	meta, err := ReadMeta(dir, step)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Meta: meta}
	if c.Weights, err = graph.ReadWeights(modelFile(dir, step)); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := meta.ModelConfig.Check(c.Weights); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", modelFile(dir, step), err)
	}
	if err := c.Weights.Finite(); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", modelFile(dir, step), err)
	}
	if withOptim {
		if c.Optim, _, err = safetensors.Read(optimFile(dir, step)); err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
	}
	return c, nil
}
