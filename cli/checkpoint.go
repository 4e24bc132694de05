package main

import (
	"fmt"
	"path/filepath"

	"gochat/checkpoint"

	"github.com/urfave/cli/v2"
)

func checkpointCommand() *cli.Command {
	checkpoints := checkpointsFlag()
	return &cli.Command{
		Name:  "checkpoint",
		Usage: "move checkpoints between gochat and nanochat (PyTorch .pt files)",
		Subcommands: []*cli.Command{{
			Name:      "import",
			Usage:     "convert a step of a nanochat checkpoint folder (model_*.pt, meta_*.json) into a gochat run",
			ArgsUsage: "NANOCHAT_DIR",
			Flags: []cli.Flag{stepFlag, checkpoints,
				&cli.StringFlag{Name: "model-tag", Aliases: []string{"g"}, Usage: "run folder to create (default: the source folder's name)"}},
			Action: runCheckpointImport,
		}, {
			Name:  "export",
			Usage: "write a step of a gochat run as nanochat's model_*.pt and meta_*.json",
			Flags: []cli.Flag{modelTagFlag, stepFlag, checkpoints,
				&cli.StringFlag{Name: "out", Required: true, Usage: "`DIR` to write into (nanochat's base_checkpoints/d<N>)"}},
			Action: runCheckpointExport,
		}},
	}
}

func runCheckpointImport(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("checkpoint import: give the nanochat checkpoint folder")
	}
	src := c.Args().First()
	step, err := stepOf(c, src)
	if err != nil {
		return err
	}
	tag := c.String("model-tag")
	if tag == "" {
		tag = filepath.Base(filepath.Clean(src))
	}
	if err := checkpoint.ValidTag(tag); err != nil {
		return fmt.Errorf("--model-tag: %w", err)
	}
	dst := filepath.Join(homeDir(c, "checkpoints", "base_checkpoints"), tag)
	if err := checkpoint.Import(src, step, dst); err != nil {
		return err
	}
	fmt.Printf("imported step %d of %s into %s\n", step, src, dst)
	return nil
}

func runCheckpointExport(c *cli.Context) error {
	src, step, err := chosenStep(c, homeDir(c, "checkpoints", "base_checkpoints"))
	if err != nil {
		return err
	}
	if err := checkpoint.Export(src, step, c.String("out")); err != nil {
		return err
	}
	fmt.Printf("exported step %d of %s to %s (model_%06d.pt, meta_%06d.json)\n", step, src, c.String("out"), step, step)
	return nil
}
