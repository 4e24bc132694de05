package main

import (
	"fmt"
	"os"

	"gochat/dist"

	"github.com/urfave/cli/v2"
)

// distTimeoutFlag bounds how long a rank of a distributed run waits for the others at a
// collective before it gives up and ends the job.
var distTimeoutFlag = &cli.DurationFlag{Name: "dist-timeout", Value: dist.DefaultTimeout,
	Usage: "under mpirun: how long a rank waits for the others (one died or hangs) before it ends the job"}

// joinRanks joins the job when mpirun started this process: the training run is then one
// of its ranks (train.Run.Comm). A rank other than 0 prints nothing on standard output
// (errors still go to standard error) and writes no files: rank 0 speaks for the job. It
// returns a nil Comm outside mpirun, and what leaves the job.
func joinRanks(c *cli.Context) (dist.Comm, func(), error) {
	if !dist.LaunchedByMPI() {
		return nil, func() {}, nil
	}
	comm, err := dist.OpenMPI(c.Duration(distTimeoutFlag.Name))
	if err != nil {
		return nil, nil, fmt.Errorf("started by mpirun: %w", err)
	}
	if comm.Rank() != 0 {
		if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			os.Stdout = null
		}
	}
	return comm, func() { comm.Close() }, nil
}
