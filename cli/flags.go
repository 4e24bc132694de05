package main

import (
	"fmt"

	"gochat/cpubackend"

	"github.com/urfave/cli/v2"
)

// Flags shared by commands, named as nanochat's scripts name them.
var (
	depthFlag  = &cli.IntFlag{Name: "depth", Value: 4, Usage: "transformer layers; model_dim = 64·depth"}
	seqLenFlag = &cli.IntFlag{Name: "max-seq-len", Value: 256, Usage: "tokens per sequence"}
	batchFlag  = &cli.IntFlag{Name: "device-batch-size", Value: 8, Usage: "sequences per forward pass"}
	vocabFlag  = &cli.IntFlag{Name: "vocab-size", Value: 8192, Usage: "vocabulary size (the tokenizer's, once there is one)"}
	seedFlag   = &cli.Uint64Flag{Name: "seed", Value: 42, Usage: "seed of the weight initialisation and the sample batch"}
	engineFlag = &cli.StringFlag{Name: "engine", Value: "auto", Usage: "compute engine: auto or cpu"}
	blasFlag   = &cli.StringFlag{Name: "blas", Value: "auto", EnvVars: []string{"GOCHAT_BLAS"}, Usage: "CPU matrix library: auto, native (OpenBLAS / Accelerate) or gonum"}
)

// cpuBLAS returns the BLAS the flags ask for, after checking the engine flag.
func cpuBLAS(c *cli.Context) (cpubackend.BLAS, error) {
	switch e := c.String(engineFlag.Name); e {
	case "auto", "cpu":
	case "metal", "cuda":
		return nil, fmt.Errorf("--engine %s: this build has only the cpu engine", e)
	default:
		return nil, fmt.Errorf("--engine %q: want auto or cpu", e)
	}
	return cpubackend.Select(c.String(blasFlag.Name))
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
