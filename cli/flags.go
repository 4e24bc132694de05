package main

import (
	"fmt"
	"runtime"
	"strconv"

	"gochat/backend"
	"gochat/cpubackend"

	"github.com/urfave/cli/v2"
)

// Flags shared by commands, named as nanochat's scripts name them; the model's shape flags
// take each command's default.
func depthFlag(def int) *cli.IntFlag {
	return &cli.IntFlag{Name: "depth", Value: def, Usage: "transformer layers; model_dim = 64·depth"}
}

func seqLenFlag(def int) *cli.IntFlag {
	return &cli.IntFlag{Name: "max-seq-len", Value: def, Usage: "tokens per sequence"}
}

func batchFlag(def int) *cli.IntFlag {
	return &cli.IntFlag{Name: "device-batch-size", Value: def, Usage: "sequences per forward pass"}
}

// trainBatchFlag is a training command's --device-batch-size, which may be left to the fit.
func trainBatchFlag(def int) *cli.StringFlag {
	return &cli.StringFlag{Name: "device-batch-size", Value: strconv.Itoa(def), Usage: "sequences per forward pass, or auto: the largest that fits the engine's memory (the total batch stays, in more or fewer micro-batches)"}
}

// deviceBatch reads a training command's --device-batch-size: 0 for auto.
func deviceBatch(c *cli.Context) (int, error) {
	v := c.String("device-batch-size")
	if v == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--device-batch-size %q: want a positive number of rows or auto", v)
	}
	return n, nil
}

// recomputeFlag trades compute for memory in training steps.
var recomputeFlag = &cli.StringFlag{Name: "recompute", Value: "auto", Usage: "activations: none (keep what the backward pass reads), blocks (each block keeps its input and runs again for its backward: about a third slower, a fifth of the memory) or auto (none when the step fits the engine's memory without)"}

func vocabFlag(def int) *cli.IntFlag {
	return &cli.IntFlag{Name: "vocab-size", Value: def, Usage: "vocabulary size: 256 bytes, the merges and 9 special tokens (a trained model's is its tokenizer's)"}
}

func checkpointsFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "checkpoints", Usage: "`DIR` of the runs (default $GOCHAT_HOME/base_checkpoints)"}
}

var (
	seedFlag   = &cli.Uint64Flag{Name: "seed", Value: 42, Usage: "seed of the weight initialisation and the sample batch"}
	engineFlag = &cli.StringFlag{Name: "engine", Value: "auto", Usage: "compute engine: auto (an NVIDIA GPU when there is one, else the CPU), cpu, metal, cuda (strict fp32), cuda-tf32 or cuda-bf16"}
	blasFlag   = &cli.StringFlag{Name: "blas", Value: "auto", EnvVars: []string{"GOCHAT_BLAS"}, Usage: "CPU matrix library: auto (the system's, else go), native (OpenBLAS / Accelerate), go (gochat's own kernels) or gonum"}
)

// openEngine opens the engine that --engine names over the CPU engine of --blas. With auto, an
// NVIDIA GPU whose engine cannot start (no NVRTC, say) leaves the work to the CPU, with a
// notice.
func openEngine(c *cli.Context) (backend.Backend, error) {
	blas, err := cpubackend.Select(c.String(blasFlag.Name))
	if err != nil {
		return nil, fmt.Errorf("--blas: %w", err)
	}
	name := c.String(engineFlag.Name)
	if name == "metal" && (runtime.GOOS != "darwin" || runtime.GOARCH != "arm64") {
		return nil, fmt.Errorf("--engine metal: Metal needs macOS on Apple silicon")
	}
	e, err := backend.OpenOn(name, cpubackend.New(blas))
	if err != nil {
		return nil, fmt.Errorf("--engine %s: %w", name, err)
	}
	return e, nil
}

// positive checks that integer flags are positive.
func positive(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.Int(n) <= 0 {
			return fmt.Errorf("--%s must be positive, got %d", n, c.Int(n))
		}
	}
	return nil
}
