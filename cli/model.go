package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"gochat/backend"
	"gochat/graph"
	"gochat/layers"
	"gochat/train"

	"github.com/urfave/cli/v2"
)

// sampleText feeds the model command's batch, as bytes (ids below 256 are valid in any
// vocabulary gochat builds), until the tokenizer can encode it.
const sampleText = "The capital of France is Paris. The chemical symbol of gold is Au. " +
	"If yesterday was Friday, then tomorrow will be Sunday. The opposite of hot is cold. "

func modelCommand() *cli.Command {
	return &cli.Command{
		Name:  "model",
		Usage: "build a GPT with nanochat's depth rule and initialisation, check it, and train it on sample text",
		Description: "Prints the configuration and the numbers nanochat's base_train derives from it, runs the\n" +
			"training graph on one batch of sample text and checks the loss a fresh model must have\n" +
			"(ln vocab_size: nanochat zero-initialises lm_head), then takes --steps optimizer steps with\n" +
			"nanochat's recipe (Muon, AdamW, warmdown, clipping) on that batch, which the model learns by\n" +
			"heart. --load takes weights from a safetensors file with nanochat's parameter names; --save\n" +
			"writes the model's weights to one.",
		Flags: []cli.Flag{depthFlag(4), seqLenFlag(256), batchFlag(8), vocabFlag(8192), seedFlag, engineFlag, blasFlag,
			&cli.StringFlag{Name: "load", Usage: "safetensors `FILE` of weights to use instead of a fresh initialisation"},
			&cli.StringFlag{Name: "save", Usage: "write the weights to safetensors `FILE`"},
			&cli.IntFlag{Name: "steps", Value: 10, Usage: "optimizer steps on the sample batch after the check (0: none)"},
		},
		Action: runModel,
	}
}

func runModel(c *cli.Context) error {
	if err := positive(c, "depth", "max-seq-len", "device-batch-size", "vocab-size"); err != nil {
		return err
	}
	if c.Int("vocab-size") < 256 {
		return fmt.Errorf("--vocab-size must be at least 256 (the byte tokens), got %d", c.Int("vocab-size"))
	}
	engine, err := openEngine(c)
	if err != nil {
		return err
	}
	cfg := graph.ConfigForDepth(c.Int("depth"), c.Int("vocab-size"), c.Int("max-seq-len"))
	B, T := c.Int("device-batch-size"), cfg.SequenceLen
	if err := cfg.Validate(); err != nil {
		return err
	}
	fit, err := fitModel(cfg, B, "auto", engine)
	if err != nil {
		return err
	}
	printConfig(cfg)

	weights := graph.InitWeights(cfg, c.Uint64("seed"))
	fresh := true
	if path := c.String("load"); path != "" {
		if weights, err = graph.ReadWeights(path); err != nil {
			return err
		}
		fresh = false
	}
	m, err := graph.Build(cfg, graph.Options{Batch: B, SeqLen: T, Mode: graph.Train, Reduction: layers.Mean, Engine: engine, Recompute: fit.Recompute})
	if err != nil {
		return err
	}
	if err := m.Load(weights); err != nil {
		return err
	}
	ids, targets := sampleBatch(B, T)
	if err := m.Run(ids, targets); err != nil {
		return err
	}
	loss := m.Loss()
	fmt.Printf("batch: %d×%d tokens of sample text (bytes)\n", B, T)
	fmt.Printf("loss: %.6f", loss)
	if fresh {
		fmt.Printf(" (a fresh model must give ln %d = %.6f)", cfg.VocabSize, math.Log(float64(cfg.VocabSize)))
	}
	fmt.Println()
	grads, err := m.Grads()
	if err == nil {
		grads, err = grads.OnHost(engine)
	}
	if err != nil {
		return err
	}
	fmt.Printf("gradient norms: wte %.4g, blocks %.4g, lm_head %.4g\n",
		norm(grads, "transformer.wte."), norm(grads, "transformer.h."), norm(grads, "lm_head."))
	// Time a second pass: the first one also allocates every buffer.
	start := time.Now()
	if err := m.Run(ids, targets); err != nil {
		return err
	}
	elapsed := time.Since(start)
	tokens := float64(B * T)
	fmt.Printf("forward+backward: %.3f s, %.0f tok/s, %.1f GFLOP/s on %s\n", elapsed.Seconds(),
		tokens/elapsed.Seconds(), cfg.FLOPsPerToken()*tokens/elapsed.Seconds()/1e9, engine.Name())
	if fresh && math.Abs(loss-math.Log(float64(cfg.VocabSize))) > 1e-4*loss {
		return fmt.Errorf("a fresh model's loss %.6f is not ln vocab_size", loss)
	}
	if err := trainSample(m, ids, targets, c.Int("steps")); err != nil {
		return err
	}
	if path := c.String("save"); path != "" {
		w, err := m.HostWeights()
		if err != nil {
			return err
		}
		if err := cfg.WriteWeights(path, w); err != nil {
			return err
		}
		fmt.Println("saved weights to", path)
	}
	return nil
}

// trainSample takes steps optimizer steps on one batch, printing each step's loss.
func trainSample(m *graph.Model, ids, targets []int, steps int) error {
	if steps <= 0 {
		return nil
	}
	tr, err := train.NewTrainer(m, train.DefaultRecipe(steps), m.Engine)
	if err != nil {
		return err
	}
	batch := []train.Batch{{IDs: ids, Targets: targets}}
	for step := 0; step < steps; step++ {
		start := time.Now()
		res, err := tr.Step(batch)
		if err != nil {
			return err
		}
		fmt.Printf("step %d/%d: loss %.4f, grad norm %.3f, lr ×%.2f, %.3f s\n",
			step+1, steps, res.Loss, res.GradNorm, res.LRMultiplier, time.Since(start).Seconds())
	}
	return nil
}

// fitModel plans a training step of rows rows of cfg on engine, with the recomputation asked
// ("auto": by the fit), prints the plan on stderr and refuses a step that does not fit.
func fitModel(cfg graph.Config, rows int, recompute string, engine backend.Backend) (train.Fit, error) {
	fit, err := train.FitRows(cfg, rows, cfg.SequenceLen, recompute, engine)
	if err != nil {
		return fit, err
	}
	fmt.Fprintf(os.Stderr, "memory: %v\n", fit)
	return fit, nil
}

// printConfig prints what nanochat's base_train prints about a model.
func printConfig(cfg graph.Config) {
	fmt.Printf("model: n_layer %d, n_embd %d, n_head %d, n_kv_head %d, head_dim %d, vocab_size %d, sequence_len %d\n",
		cfg.NLayer, cfg.NEmbd, cfg.NHead, cfg.NKVHead, cfg.HeadDim(), cfg.VocabSize, cfg.SequenceLen)
	emb := cfg.VocabSize * cfg.NEmbd
	fmt.Printf("parameters: %d (wte %d, blocks %d, lm_head %d)\n", cfg.NumParams(), emb, cfg.NumParams()-2*emb, emb)
	fmt.Printf("estimated FLOPs per token: %e\n", cfg.FLOPsPerToken())
}

// sampleBatch repeats the sample text's bytes over B×T inputs and their next-byte targets.
func sampleBatch(B, T int) (ids, targets []int) {
	ids, targets = make([]int, B*T), make([]int, B*T)
	for i := range ids {
		ids[i] = int(sampleText[i%len(sampleText)])
		targets[i] = int(sampleText[(i+1)%len(sampleText)])
	}
	return ids, targets
}

func norm(w graph.Weights, prefix string) float64 {
	var s float64
	for name, g := range w {
		if strings.HasPrefix(name, prefix) {
			for _, x := range g {
				s += float64(x) * float64(x)
			}
		}
	}
	return math.Sqrt(s)
}
