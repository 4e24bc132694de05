// Command gochat is nanochat's pipeline in one Go binary: train, evaluate and talk to small
// GPTs. Each command group lives in its own file.
package main

import (
	"errors"
	"fmt"
	"os"

	_ "gochat/cudabackend"  // --engine cuda
	_ "gochat/metalbackend" // --engine metal

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "gochat",
		Usage: "train, evaluate and chat with small GPTs (nanochat in Go)",
		Commands: []*cli.Command{
			modelCommand(),
			benchCommand(),
			tokCommand(),
			dataCommand(),
			trainCommand(),
			evalCommand(),
			demoCommand(),
			checkpointCommand(),
			chatCommand(),
			sampleCommand(),
			webCommand(),
			reportCommand(),
		},
		// Errors are printed once, by main, without usage text or a stack trace.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	guard(app)
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "gochat:", err)
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		os.Exit(1)
	}
}
