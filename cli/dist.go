package main

import (
	"fmt"
	"os"
	"time"

	"gochat/backend"
	"gochat/dist"

	"github.com/urfave/cli/v2"
)

// distFlags are the flags of a training command that may run as several ranks.
var (
	// distTimeoutFlag bounds how long a rank waits for the others at a collective before
	// it gives up and ends the job.
	distTimeoutFlag = &cli.DurationFlag{Name: "dist-timeout", Value: dist.DefaultTimeout,
		Usage: "with several ranks: how long a rank waits for the others (one died or hangs) before it ends the job"}
	nprocFlag = &cli.IntFlag{Name: "nproc-per-node",
		Usage: "run as `N` processes on this machine, one per GPU, their tensors summed by NCCL (like torchrun); on CPUs use mpirun -np N"}
)

// asLauncher runs the command's ranks when --nproc-per-node asks for them and this
// process is not one of them already; it reports whether it did.
func asLauncher(c *cli.Context) (bool, error) {
	n := c.Int(nprocFlag.Name)
	if n == 0 || os.Getenv(dist.RankEnv) != "" {
		return false, nil
	}
	if n < 0 {
		return true, fmt.Errorf("--%s must be positive", nprocFlag.Name)
	}
	if dist.LaunchedByMPI() {
		return true, fmt.Errorf("--%s under mpirun: mpirun starts the ranks already", nprocFlag.Name)
	}
	return true, launchRanks(n)
}

// joinRanks makes this process a rank of the job that started it, when one did: the
// training run is then one of its ranks (train.Run.Comm). Under gochat's launcher
// (--nproc-per-node) the ranks are an NCCL group of the engine's; under mpirun an MPI job,
// whose ranks, when the engine brings a collective library (the CUDA engine, NCCL), join
// one group of that for the tensors. A rank other than 0 prints nothing on standard output
// (errors still go to standard error) and writes no files: rank 0 speaks for the job. It
// returns a nil Comm for a process of its own.
func joinRanks(c *cli.Context, engine backend.Backend) (dist.Comm, error) {
	timeout := c.Duration(distTimeoutFlag.Name)
	group, _ := engine.(dist.Collective)
	rank, size, launched, err := dist.Launched()
	if err != nil {
		return nil, err
	}
	var comm dist.Comm
	switch {
	case launched:
		if group == nil {
			return nil, fmt.Errorf("--%s: the %s engine has no collective library; start CPU ranks with mpirun -np N", nprocFlag.Name, engine.Name())
		}
		id, err := group.NewGroupID() // the launcher's NCCL_COMM_ID: the same on every rank
		if err != nil {
			return nil, err
		}
		if comm, err = group.JoinGroup(id, rank, size, timeout); err != nil {
			return nil, err
		}
	case dist.LaunchedByMPI():
		mpi, err := dist.OpenMPI(timeout)
		if err != nil {
			return nil, fmt.Errorf("started by mpirun: %w", err)
		}
		comm = mpi
		if _, remote := engine.(backend.Remote); remote && group == nil {
			return nil, fmt.Errorf("started by mpirun: MPI cannot reach the %s engine's memory, and the engine brings no collective library of its own", engine.Name())
		}
		if group != nil {
			if comm, err = joinOverMPI(mpi, group, timeout); err != nil {
				return nil, err
			}
		}
	default:
		return nil, nil
	}
	if comm.Rank() != 0 {
		if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			os.Stdout = null
		}
	}
	return comm, nil
}

// joinOverMPI joins the engine's group with the id rank 0 makes and MPI hands out.
func joinOverMPI(mpi *dist.MPI, group dist.Collective, timeout time.Duration) (dist.Comm, error) {
	var id []byte
	if mpi.Rank() == 0 {
		var err error
		if id, err = group.NewGroupID(); err != nil {
			return nil, err
		}
	}
	ids, err := dist.Exchange(mpi, id)
	if err != nil {
		return nil, err
	}
	g, err := group.JoinGroup(ids[0], mpi.Rank(), mpi.Size(), timeout)
	if err != nil {
		return nil, err
	}
	return dist.Over(g, mpi), nil
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
