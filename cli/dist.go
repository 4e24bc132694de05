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
// returns a nil Comm outside mpirun.
func joinRanks(c *cli.Context) (dist.Comm, error) {
	if !dist.LaunchedByMPI() {
		return nil, nil
	}
	comm, err := dist.OpenMPI(c.Duration(distTimeoutFlag.Name))
	if err != nil {
		return nil, fmt.Errorf("started by mpirun: %w", err)
	}
	if comm.Rank() != 0 {
		if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			os.Stdout = null
		}
	}
	return comm, nil
}

// leaveRanks leaves the job with the command's outcome err. A rank that failed says so
// and exits at once, without the goodbye every rank must reach (MPI_Finalize): the
// launcher sees a rank end early and ends the others, which would otherwise wait for it.
func leaveRanks(comm dist.Comm, err error) error {
	if comm == nil {
		return err
	}
	if err != nil && comm.Size() > 1 {
		fmt.Fprintf(os.Stderr, "gochat: rank %d of %d: %v\n", comm.Rank(), comm.Size(), err)
		os.Exit(1)
	}
	if cerr := comm.Close(); err == nil {
		err = cerr
	}
	return err
}
