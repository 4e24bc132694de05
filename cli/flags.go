package main

import (
	"fmt"
	"os"
	"runtime"

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

// cpuBLAS returns the BLAS the engine and BLAS flags ask for: the CPU's, or an accelerator's
// that runs the large products (and says so in its name).
func cpuBLAS(c *cli.Context) (cpubackend.BLAS, error) {
	switch e := c.String(engineFlag.Name); e {
	case "auto":
		// An NVIDIA GPU in strict fp32 when there is one (32× the 16-core CPU at d4, 38× at
		// d12: benchmarks/README.md); Metal is not chosen until it has run on a Mac.
		if gpu, err := cpubackend.Select("cuda"); err == nil {
			return gpu, nil
		}
	case "cpu":
	case "metal":
		if runtime.GOOS != "darwin" || runtime.GOARCH != "arm64" {
			return nil, fmt.Errorf("--engine metal: Metal needs macOS on Apple silicon")
		}
		fallthrough
	case "cuda", "cuda-tf32", "cuda-bf16":
		b, err := cpubackend.Select(e)
		if err != nil {
			return nil, fmt.Errorf("--engine %s: %w", e, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("--engine %q: want auto, cpu, metal, cuda, cuda-tf32 or cuda-bf16", e)
	}
	return cpubackend.Select(c.String(blasFlag.Name))
}

// trainingEngine is the engine graphs and optimizers run on over blas: an accelerator's own,
// which keeps the tensors in its memory, or the CPU engine. With --engine auto, a GPU whose
// engine cannot start (no NVRTC, say) leaves training to the CPU, with a notice.
func trainingEngine(c *cli.Context, blas cpubackend.BLAS) (backend.Backend, error) {
	e, err := cpubackend.NewEngine(blas)
	if err != nil && c.String(engineFlag.Name) == "auto" {
		fmt.Fprintf(os.Stderr, "gochat: %s: %v; training on the CPU\n", blas.Name(), err)
		cpu, cerr := cpubackend.Select(c.String(blasFlag.Name))
		if cerr != nil {
			return nil, cerr
		}
		return cpubackend.New(cpu), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", blas.Name(), err)
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
