package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gochat/checkpoint"
	"gochat/web"

	"github.com/urfave/cli/v2"
)

func webCommand() *cli.Command {
	return &cli.Command{
		Name:  "web",
		Usage: "serve the chat UI and its API (nanochat's chat_web)",
		Description: "GET / is the chat page, POST /chat/completions the streaming API, GET /health and /stats the\n" +
			"server's state. Conversations are logged to standard error. Unlike nanochat, it listens on\n" +
			"127.0.0.1 unless --host says otherwise.\n\n" +
			"OpenAI's API is under /v1 (POST /v1/chat/completions, GET /v1/models), for OpenAI's clients with\n" +
			"base URL http://HOST:PORT/v1. The model is named by its stage and run, as sft-d12; --api-key (or\n" +
			"GOCHAT_API_KEY) makes /v1 want it as a bearer token.",
		Flags: append(generationFlags("sft", 0.8, 512),
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 8000, Usage: "port to listen on (0: any free one)"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "address to listen on (0.0.0.0: every interface)"},
			&cli.IntFlag{Name: "workers", Value: 2, Usage: "requests generated at once"},
			&cli.IntFlag{Name: "queue", Value: 16, Usage: "requests that may wait for a worker; beyond them the server answers 503"},
			&cli.DurationFlag{Name: "body-timeout", Value: 30 * time.Second, Usage: "how long a request's body may take to arrive; then 408"},
			&cli.StringFlag{Name: "api-key", EnvVars: []string{"GOCHAT_API_KEY"}, Usage: "the key /v1 wants as Authorization: Bearer KEY (default: none)"},
		),
		Action: runWeb,
	}
}

func runWeb(c *cli.Context) error {
	if err := positive(c, "workers", "queue"); err != nil {
		return err
	}
	if p := c.Int("port"); p < 0 || p > 65535 {
		return fmt.Errorf("--port %d is not a port", p)
	}
	eng, which, err := loadEngine(c)
	if err != nil {
		return err
	}
	model, err := modelName(c)
	if err != nil {
		return err
	}
	srv := web.New(eng, web.Options{Temperature: c.Float64("temperature"), TopK: c.Int("top-k"), MaxTokens: c.Int("max-tokens"),
		Model: model, APIKey: c.String("api-key"),
		Workers: c.Int("workers"), Queue: c.Int("queue"), BodyTimeout: c.Duration("body-timeout"), Log: log.New(os.Stderr, "", log.LstdFlags)})
	ln, err := net.Listen("tcp", net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port"))))
	if err != nil {
		return err
	}
	key := "no key"
	if c.String("api-key") != "" {
		key = "its key as a bearer token"
	}
	fmt.Printf("gochat: %s\nserving on http://%s\nOpenAI API: http://%s/v1, model %s, %s\n", which, ln.Addr(), ln.Addr(), model, key)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := interruptible(c.Context, "finishing the replies under way")
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(shutdown)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Println("stopped")
	return nil
}

// modelName names the served model in the OpenAI API by its stage and run, as "sft-d12":
// the run of --model-tag, else the one loadEngine takes, the largest.
func modelName(c *cli.Context) (string, error) {
	tag := c.String("model-tag")
	if tag == "" {
		var err error
		if tag, err = checkpoint.LargestTag(filepath.Join(gochatHome(), sources[c.String("source")])); err != nil {
			return "", err
		}
	}
	return c.String("source") + "-" + tag, nil
}
