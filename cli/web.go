package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"gochat/web"

	"github.com/urfave/cli/v2"
)

func webCommand() *cli.Command {
	return &cli.Command{
		Name:  "web",
		Usage: "serve the chat UI and its API (nanochat's chat_web)",
		Description: "GET / is the chat page, POST /chat/completions the streaming API, GET /health and /stats the\n" +
			"server's state. Conversations are logged to standard error. Unlike nanochat, it listens on\n" +
			"127.0.0.1 unless --host says otherwise.",
		Flags: append(generationFlags("sft", 0.8, 512),
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 8000, Usage: "port to listen on (0: any free one)"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "address to listen on (0.0.0.0: every interface)"},
			&cli.IntFlag{Name: "workers", Value: 2, Usage: "requests generated at once"},
			&cli.IntFlag{Name: "queue", Value: 16, Usage: "requests that may wait for a worker; beyond them the server answers 503"},
			&cli.DurationFlag{Name: "body-timeout", Value: 30 * time.Second, Usage: "how long a request's body may take to arrive; then 408"},
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
	srv := web.New(eng, web.Options{Temperature: c.Float64("temperature"), TopK: c.Int("top-k"), MaxTokens: c.Int("max-tokens"),
		Workers: c.Int("workers"), Queue: c.Int("queue"), BodyTimeout: c.Duration("body-timeout"), Log: log.New(os.Stderr, "", log.LstdFlags)})
	ln, err := net.Listen("tcp", net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port"))))
	if err != nil {
		return err
	}
	fmt.Printf("gochat: %s\nserving on http://%s\n", which, ln.Addr())
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
