package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"

	"gochat/backend"
	"gochat/checkpoint"
	"gochat/graph"
	"gochat/sampler"
	"gochat/tokenizer"

	"github.com/urfave/cli/v2"
)

// sources are nanochat's checkpoint folders by training stage (-i).
var sources = map[string]string{"base": "base_checkpoints", "mid": "mid_checkpoints", "sft": "chatsft_checkpoints", "rl": "chatrl_checkpoints"}

// sourceFlag chooses the training stage whose checkpoint a command reads (-i).
func sourceFlag(def string) *cli.StringFlag {
	return &cli.StringFlag{Name: "source", Aliases: []string{"i"}, Value: def, Usage: "training stage of the checkpoint: base, mid, sft or rl"}
}

// sourceRoot is the folder of the runs of the stage --source names, or the one
// --checkpoints names where a command takes it.
func sourceRoot(c *cli.Context) (string, error) {
	folder, ok := sources[c.String("source")]
	if !ok {
		return "", fmt.Errorf("--source %q: want base, mid, sft or rl", c.String("source"))
	}
	return homeDir(c, "checkpoints", folder), nil
}

// generationFlags are the flags of the commands that generate: the checkpoint and the
// sampling defaults.
func generationFlags(source string, temperature float64, maxTokens int) []cli.Flag {
	return []cli.Flag{
		sourceFlag(source),
		modelTagFlag, stepFlag, tokenizerFlag, engineFlag, blasFlag, quantizeFlag,
		&cli.Float64Flag{Name: "temperature", Aliases: []string{"t"}, Value: temperature, Usage: "sampling temperature (0: the most likely token)"},
		&cli.IntFlag{Name: "top-k", Aliases: []string{"k"}, Value: 50, Usage: "sample among the k most likely tokens (0: all)"},
		&cli.IntFlag{Name: "max-tokens", Aliases: []string{"m"}, Value: maxTokens, Usage: "tokens per reply at most"},
	}
}

// quantizeFlag chooses the weights generation and evaluation multiply by.
var quantizeFlag = &cli.StringFlag{Name: "quantize", Value: "none", Usage: "weights: none (float32) or int8 (a scale per row: a quarter of the bytes each token reads)"}

// cachedModel lays out weights for generation on engine, quantized as --quantize asks.
func cachedModel(c *cli.Context, cfg graph.Config, w graph.Weights, engine backend.Backend) (*graph.Cached, error) {
	q := c.String("quantize")
	if q != "none" && q != "int8" {
		return nil, fmt.Errorf("--quantize %q: want none or int8", q)
	}
	m, err := graph.NewCached(cfg, w, engine)
	if err == nil && q == "int8" {
		err = m.Quantize()
	}
	if err == nil {
		err = m.Place(engine)
	}
	return m, err
}

// sampleSeedFlag fixes the sampling of chat and sample.
var sampleSeedFlag = &cli.Uint64Flag{Name: "seed", Usage: "seed of the sampling (default: a new one each time)"}

func chatCommand() *cli.Command {
	return &cli.Command{
		Name:  "chat",
		Usage: "talk to a model in the terminal (nanochat's chat_cli)",
		Description: "Type a message and Enter; `clear` starts a new conversation, `quit` or `exit` (or Ctrl-D) ends.\n" +
			"Ctrl-C stops a reply; at the prompt it ends the program. A base model (-i base, what `gochat\n" +
			"train base` makes) does not chat: it continues each text you type.",
		Flags: append(generationFlags("sft", 0.6, 256), sampleSeedFlag,
			&cli.StringFlag{Name: "prompt", Aliases: []string{"p"}, Usage: "answer this one message and exit"}),
		Action: runChat,
	}
}

func sampleCommand() *cli.Command {
	return &cli.Command{
		Name:      "sample",
		Usage:     "continue a text with a model (a base model's use)",
		ArgsUsage: "[TEXT]",
		Description: "Continues TEXT (or standard input) --num-samples times, each row sampled on its own, and\n" +
			"prints each prompt with its continuation.",
		Flags: append(generationFlags("base", 0.6, 256), sampleSeedFlag,
			&cli.IntFlag{Name: "num-samples", Aliases: []string{"n"}, Value: 1, Usage: "continuations, generated side by side"}),
		Action: runSample,
	}
}

// loadEngine builds the generation engine for the checkpoint the flags choose.
func loadEngine(c *cli.Context) (*sampler.Generator, string, error) {
	root, err := sourceRoot(c)
	if err != nil {
		return nil, "", err
	}
	if c.Float64("temperature") < 0 || c.Int("top-k") < 0 || c.Int("max-tokens") <= 0 {
		return nil, "", fmt.Errorf("--temperature and --top-k must not be negative, --max-tokens must be positive")
	}
	engine, err := openEngine(c)
	if err != nil {
		return nil, "", err
	}
	m, tok, which, err := loadCached(c, root, engine)
	if err != nil {
		if tags, _ := checkpoint.Tags(root); len(tags) == 0 && c.String("source") != "base" {
			err = fmt.Errorf("%w (this stage has no runs yet; `gochat train base` makes base models: -i base)", err)
		}
		return nil, "", err
	}
	eng, err := sampler.NewGenerator(m, tok)
	return eng, which, err
}

// settings are the sampling flags, with a fresh seed unless --seed is given.
func settings(c *cli.Context, rows int) sampler.Settings {
	seed := c.Uint64("seed")
	if !c.IsSet("seed") {
		seed = rand.Uint64()
	}
	return sampler.Settings{MaxTokens: c.Int("max-tokens"), Temperature: c.Float64("temperature"), TopK: c.Int("top-k"), Seed: seed, Rows: rows}
}

func runSample(c *cli.Context) error {
	text := strings.Join(c.Args().Slice(), " ")
	if text == "" {
		raw, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		text = string(raw)
	}
	rows := c.Int("num-samples")
	if rows <= 0 || rows > sampler.MaxRows {
		return fmt.Errorf("--num-samples must lie in 1..%d, got %d", sampler.MaxRows, rows)
	}
	eng, _, err := loadEngine(c)
	if err != nil {
		return err
	}
	bos, err := eng.Tok.Special("<|bos|>")
	if err != nil {
		return err
	}
	prompt := append([]int{bos}, eng.Tok.Encode(text)...)
	ctx, stop := interruptible(c.Context, "stopping the samples")
	defer stop()
	tokens, _, err := eng.Continuations(ctx, prompt, settings(c, rows))
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	for r, t := range tokens {
		out, derr := eng.Tok.Decode(t)
		if derr != nil {
			return derr
		}
		if rows > 1 {
			fmt.Printf("--- sample %d\n", r+1)
		}
		fmt.Printf("%s%s\n", text, out)
	}
	return nil
}

// chat is a terminal conversation.
type chat struct {
	eng      *sampler.Generator
	c        *cli.Context
	base     bool  // a base model: continue texts, no conversation
	tokens   []int // the conversation so far
	special  map[string]int
	mu       sync.Mutex
	stopping context.CancelFunc // cancels the reply being written, when there is one
}

func runChat(c *cli.Context) error {
	eng, which, err := loadEngine(c)
	if err != nil {
		return err
	}
	ch := &chat{eng: eng, c: c, base: c.String("source") == "base", special: map[string]int{}}
	for _, name := range tokenizer.SpecialTokens {
		ch.special[name], _ = eng.Tok.Special(name)
	}
	ch.clear()
	if p := c.String("prompt"); p != "" {
		return ch.reply(p)
	}
	fmt.Printf("gochat: %s\n", which)
	if ch.base {
		fmt.Println("This is a base model: it continues the text you type; it does not hold a conversation.")
	}
	fmt.Println("Type `quit` or `exit` to end, `clear` to start over; Ctrl-C stops a reply.")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	go ch.interrupts(sig)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for {
		fmt.Print("\nUser: ")
		if !in.Scan() {
			fmt.Println()
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		switch strings.ToLower(line) {
		case "":
			continue
		case "quit", "exit":
			fmt.Println("Goodbye!")
			return nil
		case "clear":
			ch.clear()
			fmt.Println("Conversation cleared.")
			continue
		}
		if err := ch.reply(line); err != nil {
			return err
		}
	}
}

// interrupts stops the reply being written on Ctrl-C, or ends the program at the prompt.
func (ch *chat) interrupts(sig <-chan os.Signal) {
	for range sig {
		ch.mu.Lock()
		stop := ch.stopping
		ch.mu.Unlock()
		if stop == nil {
			fmt.Println("\nGoodbye!")
			os.Exit(0)
		}
		stop()
	}
}

// clear starts a new conversation.
func (ch *chat) clear() { ch.tokens = []int{ch.special["<|bos|>"]} }

// reply writes the model's answer to message, streaming it.
func (ch *chat) reply(message string) error {
	var prompt []int
	if ch.base {
		prompt = append([]int{ch.special["<|bos|>"]}, ch.eng.Tok.Encode(message)...)
		fmt.Print(message)
	} else {
		ch.tokens = append(ch.tokens, ch.special["<|user_start|>"])
		ch.tokens = append(ch.tokens, ch.eng.Tok.Encode(message)...)
		ch.tokens = append(ch.tokens, ch.special["<|user_end|>"], ch.special["<|assistant_start|>"])
		prompt = ch.tokens
		fmt.Print("\nAssistant: ")
	}
	ctx, cancel := context.WithCancel(ch.c.Context)
	ch.mu.Lock()
	ch.stopping = cancel
	ch.mu.Unlock()
	defer func() {
		ch.mu.Lock()
		ch.stopping = nil
		ch.mu.Unlock()
		cancel()
	}()
	dec := ch.eng.Tok.NewStreamDecoder()
	var reply []int
	err := ch.eng.Generate(ctx, prompt, settings(ch.c, 1), func(col sampler.Column) bool {
		t := col.Tokens[0]
		reply = append(reply, t)
		if t == ch.special["<|assistant_end|>"] || t == ch.special["<|bos|>"] {
			return false
		}
		text, err := dec.Push(t)
		if err == nil {
			fmt.Print(text)
		}
		return true
	})
	fmt.Println(dec.Flush())
	if errors.Is(err, context.Canceled) {
		fmt.Println("[stopped]")
		err = nil
	}
	if !ch.base { // the reply joins the conversation, its turn closed even when cut short
		ch.tokens = append(ch.tokens, reply...)
		if len(reply) == 0 || reply[len(reply)-1] != ch.special["<|assistant_end|>"] {
			ch.tokens = append(ch.tokens, ch.special["<|assistant_end|>"])
		}
	}
	return err
}
