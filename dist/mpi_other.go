//go:build !(linux || darwin)

package dist

import (
	"errors"
	"time"
)

// MPI is unavailable on this system.
type MPI struct{ Comm }

// LaunchedByMPI reports that no MPI job can start gochat here.
func LaunchedByMPI() bool { return false }

// OpenMPI reports that Open MPI cannot be loaded here.
func OpenMPI(time.Duration) (*MPI, error) {
	return nil, errors.New("mpi: no Open MPI loader for this operating system")
}
