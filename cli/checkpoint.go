package main

import (
	"fmt"
	"path/filepath"

	"gochat/checkpoint"
	"gochat/graph"
	"gochat/tokenizer"

	"github.com/urfave/cli/v2"
)

func checkpointCommand() *cli.Command {
	checkpoints := &cli.StringFlag{Name: "checkpoints", Usage: "`DIR` of the runs (default: the folder of the stage -i names, under $GOCHAT_HOME)"}
	return &cli.Command{
		Name:  "checkpoint",
		Usage: "move checkpoints between gochat, nanochat (PyTorch .pt files) and HuggingFace transformers",
		Subcommands: []*cli.Command{{
			Name:  "import",
			Usage: "convert a step of a nanochat checkpoint folder (model_*.pt, meta_*.json), or a transformers NanoChat folder (--format hf), into a gochat run",
			Description: "With --format hf the folder holds config.json, model.safetensors and tokenizer.json (float32,\n" +
				"bfloat16 or float16 weights); the run becomes step 0 of --model-tag and its tokenizer is saved in\n" +
				"the run's folder, under tokenizer/, which the other commands take with --tokenizer.",
			ArgsUsage: "DIR",
			Flags: []cli.Flag{sourceFlag("base"), stepFlag, checkpoints, formatFlag,
				&cli.StringFlag{Name: "model-tag", Aliases: []string{"g"}, Usage: "run folder to create (default: the source folder's name)"}},
			Action: runCheckpointImport,
		}, {
			Name:  "export",
			Usage: "write a step of a gochat run as nanochat's model_*.pt and meta_*.json, or as a folder transformers loads with its NanoChat classes (--format hf)",
			Description: "--format hf writes config.json, model.safetensors (float32, transformers' names), tokenizer.json,\n" +
				"tokenizer_config.json with the chat template and generation_config.json:\n" +
				"AutoModelForCausalLM.from_pretrained(DIR) and AutoTokenizer.from_pretrained(DIR) load it.",
			Flags: []cli.Flag{sourceFlag("base"), modelTagFlag, stepFlag, checkpoints, formatFlag, tokenizerFlag,
				&cli.StringFlag{Name: "out", Required: true, Usage: "`DIR` to write into (nanochat's base_checkpoints/d<N>, or any folder for hf)"}},
			Action: runCheckpointExport,
		}, {
			Name:  "quantize",
			Usage: "write a step's weights in int8 beside it (model_<step>.int8.safetensors), which --quantize int8 then reads instead of the float32 ones",
			Description: "Every matrix but the embedding, a scale per row, as --quantize int8 makes them on load: chat,\n" +
				"sample, web and the evaluations read the file when it is there, a byte a weight on disk and in memory.",
			Flags:  []cli.Flag{sourceFlag("base"), modelTagFlag, stepFlag},
			Action: runCheckpointQuantize,
		}},
	}
}

// formatFlag chooses the other side of an import or export.
var formatFlag = &cli.StringFlag{Name: "format", Value: "pt", Usage: "pt (nanochat's checkpoint files) or hf (transformers' NanoChat folder)"}

func checkFormat(c *cli.Context) error {
	if f := c.String("format"); f != "pt" && f != "hf" {
		return fmt.Errorf("--format %q: want pt or hf", f)
	}
	return nil
}

func runCheckpointImport(c *cli.Context) error {
	if err := checkFormat(c); err != nil {
		return err
	}
	if c.NArg() != 1 {
		return fmt.Errorf("checkpoint import: give the folder to import")
	}
	src := c.Args().First()
	tag := c.String("model-tag")
	if tag == "" {
		tag = filepath.Base(filepath.Clean(src))
	}
	if err := checkpoint.ValidTag(tag); err != nil {
		return fmt.Errorf("--model-tag: %w", err)
	}
	root, err := sourceRoot(c)
	if err != nil {
		return err
	}
	dst := filepath.Join(root, tag)
	if c.String("format") == "hf" {
		if steps, _ := checkpoint.Steps(dst); len(steps) > 0 {
			return fmt.Errorf("%s holds a run already (steps %v): choose another --model-tag", dst, steps)
		}
		tok, err := checkpoint.ImportHF(src, dst)
		if err != nil {
			return err
		}
		tokDir := filepath.Join(dst, "tokenizer")
		if err := tok.Save(tokDir); err != nil {
			return err
		}
		fmt.Printf("imported %s into %s as step 0; its tokenizer is in %s (give --tokenizer %s)\n", src, dst, tokDir, tokDir)
		return nil
	}
	step, err := stepOf(c, src)
	if err != nil {
		return err
	}
	if err := checkpoint.Import(src, step, dst); err != nil {
		return err
	}
	fmt.Printf("imported step %d of %s into %s\n", step, src, dst)
	return nil
}

func runCheckpointExport(c *cli.Context) error {
	if err := checkFormat(c); err != nil {
		return err
	}
	root, err := sourceRoot(c)
	if err != nil {
		return err
	}
	src, step, err := chosenStep(c, root)
	if err != nil {
		return err
	}
	out := c.String("out")
	if c.String("format") == "hf" {
		tok, err := tokenizer.Load(tokenizerDir(c))
		if err != nil {
			return err
		}
		if err := checkpoint.ExportHF(src, step, tok, out); err != nil {
			return err
		}
		fmt.Printf("exported step %d of %s to %s (config.json, model.safetensors, tokenizer.json, tokenizer_config.json)\n", step, src, out)
		return nil
	}
	if err := checkpoint.Export(src, step, out); err != nil {
		return err
	}
	fmt.Printf("exported step %d of %s to %s (model_%06d.pt, meta_%06d.json)\n", step, src, out, step, step)
	return nil
}

func runCheckpointQuantize(c *cli.Context) error {
	root, err := sourceRoot(c)
	if err != nil {
		return err
	}
	dir, step, err := chosenStep(c, root)
	if err != nil {
		return err
	}
	ck, err := checkpoint.Load(dir, step, false)
	if err != nil {
		return err
	}
	m, err := graph.NewCached(ck.Meta.ModelConfig, ck.Weights, nil)
	if err != nil {
		return err
	}
	f32 := m.WeightBytes()
	if err := m.Quantize(); err != nil {
		return err
	}
	path := checkpoint.Int8File(dir, step)
	if err := m.WriteInt8(path); err != nil {
		return err
	}
	fmt.Printf("wrote %s: a token reads %s of weights, %s in float32\n", path, graph.Size(int64(m.WeightBytes())), graph.Size(int64(f32)))
	return nil
}
