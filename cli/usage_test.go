package main

import (
	"errors"
	"strings"
	"testing"

	"gochat/backend"

	"github.com/urfave/cli/v2"
)

// TestOutOfMemoryIsAnError: a command whose engine runs out of device memory (Make panics
// with backend.OutOfMemory) ends with that as its error, saying what to lower; any other
// panic stays a panic.
func TestOutOfMemoryIsAnError(t *testing.T) {
	spent := errors.New("cuda: 4096 MiB more device memory asked for")
	run := func(p any) (err error) {
		c := &cli.Command{Name: "spend", Action: func(*cli.Context) error { panic(p) }}
		guardCommand(c, "gochat")
		app := &cli.App{Name: "gochat", Commands: []*cli.Command{c}, ExitErrHandler: func(*cli.Context, error) {}}
		return app.Run([]string{"gochat", "spend"})
	}
	err := run(backend.OutOfMemory{Err: spent})
	if !errors.Is(err, spent) || !strings.Contains(err.Error(), "lower --device-batch-size") {
		t.Errorf("out of device memory: %v", err)
	}
	defer func() {
		if r := recover(); r != "a bug" {
			t.Errorf("another panic came back as %v", r)
		}
	}()
	run("a bug")
	t.Error("another panic became an error")
}
