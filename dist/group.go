package dist

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Collective is an engine that brings a collective library for its own memory: the CUDA
// engine, NCCL. A group is named by an id that rank 0 makes (NewGroupID) and hands to the
// others, through MPI or the launcher's environment; every rank joins it with JoinGroup.
type Collective interface {
	NewGroupID() ([]byte, error)
	JoinGroup(id []byte, rank, size int, timeout time.Duration) (Comm, error)
}

// The environment gochat's own launcher (`--nproc-per-node N`) gives each process it
// starts, as torchrun does: its rank and the number of ranks.
const (
	RankEnv  = "GOCHAT_RANK"
	WorldEnv = "GOCHAT_WORLD_SIZE"
)

// Launched reports the rank and size gochat's launcher gave this process (ok false when it
// did not start it).
func Launched() (rank, size int, ok bool, err error) {
	r, s := os.Getenv(RankEnv), os.Getenv(WorldEnv)
	if r == "" && s == "" {
		return 0, 0, false, nil
	}
	rank, err1 := strconv.Atoi(r)
	size, err2 := strconv.Atoi(s)
	if err1 != nil || err2 != nil || size < 1 || rank < 0 || rank >= size {
		return 0, 0, false, fmt.Errorf("dist: %s=%q and %s=%q are not a rank and a number of ranks", RankEnv, r, WorldEnv, s)
	}
	return rank, size, true, nil
}

// LocalRank is this process's rank among the ranks mpirun started on this machine (ok
// false when mpirun did not start it): what picks its GPU when the machine has several.
func LocalRank() (rank int, ok bool) {
	r, err := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_LOCAL_RANK"))
	return r, err == nil && r >= 0
}

// Over is c, whose Close also closes under: the MPI job that handed out c's group id.
func Over(c, under Comm) Comm { return layered{c, under} }

type layered struct {
	Comm
	under Comm
}

func (l layered) Close() error {
	err := l.Comm.Close()
	if uerr := l.under.Close(); err == nil {
		err = uerr
	}
	return err
}
