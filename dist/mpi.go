//go:build linux || darwin

package dist

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// mpiLibraries lists where Open MPI keeps libmpi: Debian's and Homebrew's. GOCHAT_MPI_LIB,
// when set, is tried first.
func mpiLibraries() []string {
	var libs []string
	if p := os.Getenv("GOCHAT_MPI_LIB"); p != "" {
		libs = append(libs, p)
	}
	if runtime.GOOS == "darwin" {
		return append(libs, "/opt/homebrew/lib/libmpi.40.dylib", "/usr/local/lib/libmpi.40.dylib", "libmpi.40.dylib")
	}
	return append(libs, "libmpi.so.40", "libmpi.so")
}

// LaunchedByMPI reports whether mpirun started this process (Open MPI names the job's size
// in its environment).
func LaunchedByMPI() bool { return os.Getenv("OMPI_COMM_WORLD_SIZE") != "" }

// mpiThreadSerialized is MPI_THREAD_SERIALIZED: any thread may call MPI, one at a time (Go
// moves goroutines between threads; a mutex keeps the calls one at a time).
const mpiThreadSerialized = 2

// MPI is a Comm over Open MPI's MPI_COMM_WORLD, loaded at run time with purego.
type MPI struct {
	mu         sync.Mutex
	rank, size int
	watchdog   Watchdog
	world      uintptr // the addresses of Open MPI's predefined handles
	float, dbl uintptr
	byte_      uintptr
	sum, maxOp uintptr
	allreduce  func(send uintptr, recv unsafe.Pointer, count int32, dtype, op, comm uintptr) int32 // always in place
	scatter    func(send, recv unsafe.Pointer, count int32, dtype, op, comm uintptr) int32
	allgather  func(send unsafe.Pointer, sendCount int32, sendType uintptr, recv unsafe.Pointer, recvCount int32, recvType, comm uintptr) int32
	finalize   func() int32
	closed     bool
}

// mpiInPlace is Open MPI's MPI_IN_PLACE, a sentinel address the library compares with.
const mpiInPlace uintptr = 1

// OpenMPI joins the job mpirun started: it loads libmpi, initialises it and reads this
// process's rank. A collective that waits longer than timeout for the others ends the
// process (0: DefaultTimeout).
func OpenMPI(timeout time.Duration) (*MPI, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var lib uintptr
	var tried []string
	for _, path := range mpiLibraries() {
		var err error
		if lib, err = purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			break
		}
		tried = append(tried, path)
	}
	if lib == 0 {
		return nil, fmt.Errorf("mpi: no Open MPI library found (tried %s); install it (Debian: apt-get install openmpi-bin; macOS: brew install open-mpi)", strings.Join(tried, ", "))
	}
	m := &MPI{}
	handles := []struct {
		dst  *uintptr
		name string
	}{{&m.world, "ompi_mpi_comm_world"}, {&m.float, "ompi_mpi_float"}, {&m.dbl, "ompi_mpi_double"},
		{&m.byte_, "ompi_mpi_byte"}, {&m.sum, "ompi_mpi_op_sum"}, {&m.maxOp, "ompi_mpi_op_max"}}
	for _, h := range handles {
		addr, err := purego.Dlsym(lib, h.name)
		if err != nil {
			return nil, errors.New("mpi: the MPI library is not Open MPI (it has no " + h.name + "); gochat speaks Open MPI's ABI")
		}
		*h.dst = addr
	}
	var initThread func(argc, argv unsafe.Pointer, required int32, provided *int32) int32
	var commRank, commSize func(comm uintptr, out *int32) int32
	purego.RegisterLibFunc(&initThread, lib, "MPI_Init_thread")
	purego.RegisterLibFunc(&commRank, lib, "MPI_Comm_rank")
	purego.RegisterLibFunc(&commSize, lib, "MPI_Comm_size")
	purego.RegisterLibFunc(&m.allreduce, lib, "MPI_Allreduce")
	purego.RegisterLibFunc(&m.scatter, lib, "MPI_Reduce_scatter_block")
	purego.RegisterLibFunc(&m.allgather, lib, "MPI_Allgather")
	purego.RegisterLibFunc(&m.finalize, lib, "MPI_Finalize")
	var provided, rank, size int32
	if rc := initThread(nil, nil, mpiThreadSerialized, &provided); rc != 0 {
		return nil, fmt.Errorf("mpi: MPI_Init_thread failed (error %d)", rc)
	}
	if provided < mpiThreadSerialized {
		m.finalize()
		return nil, fmt.Errorf("mpi: the library gives thread level %d; gochat needs MPI_THREAD_SERIALIZED (%d)", provided, mpiThreadSerialized)
	}
	commRank(m.world, &rank)
	commSize(m.world, &size)
	m.rank, m.size = int(rank), int(size)
	m.watchdog = Watchdog{Rank: m.rank, Size: m.size, Timeout: timeout}
	return m, nil
}

// Rank implements Comm.
func (m *MPI) Rank() int { return m.rank }

// Size implements Comm.
func (m *MPI) Size() int { return m.size }

// call runs one collective, what, under the watchdog: if it has not returned after the
// timeout, a rank died or hangs, and this one ends with a message saying so.
func (m *MPI) call(what string, n int, f func(count int32) int32) error {
	if n > math.MaxInt32 {
		return fmt.Errorf("mpi: %s of %d elements, more than MPI's count of %d", what, n, math.MaxInt32)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("mpi: %s after Close", what)
	}
	var rc int32
	m.watchdog.Guard(what, func() { rc = f(int32(n)) })
	if rc != 0 {
		return fmt.Errorf("mpi: %s failed (error %d)", what, rc)
	}
	return nil
}

// AllReduce implements Comm.
func (m *MPI) AllReduce(x []float32) error {
	if len(x) == 0 {
		return nil
	}
	return m.call("all-reduce", len(x), func(n int32) int32 {
		return m.allreduce(mpiInPlace, unsafe.Pointer(&x[0]), n, m.float, m.sum, m.world)
	})
}

// ReduceScatter implements Comm.
func (m *MPI) ReduceScatter(send, recv []float32) error {
	if len(send) != m.size*len(recv) {
		return fmt.Errorf("mpi: reduce-scatter of %d floats into parts of %d over %d ranks", len(send), len(recv), m.size)
	}
	if len(recv) == 0 {
		return nil
	}
	return m.call("reduce-scatter", len(recv), func(n int32) int32 {
		return m.scatter(unsafe.Pointer(&send[0]), unsafe.Pointer(&recv[0]), n, m.float, m.sum, m.world)
	})
}

// AllGather implements Comm.
func (m *MPI) AllGather(send, recv []float32) error {
	if len(recv) != m.size*len(send) {
		return fmt.Errorf("mpi: all-gather of parts of %d floats into %d over %d ranks", len(send), len(recv), m.size)
	}
	if len(send) == 0 {
		return nil
	}
	return m.call("all-gather", len(send), func(n int32) int32 {
		return m.allgather(unsafe.Pointer(&send[0]), n, m.float, unsafe.Pointer(&recv[0]), n, m.float, m.world)
	})
}

// SumHost implements Comm.
func (m *MPI) SumHost(x []float64) error { return m.reduceHost("sum", x, m.sum) }

// MaxHost implements Comm.
func (m *MPI) MaxHost(x []float64) error { return m.reduceHost("maximum", x, m.maxOp) }

func (m *MPI) reduceHost(what string, x []float64, op uintptr) error {
	if len(x) == 0 {
		return nil
	}
	return m.call(what, len(x), func(n int32) int32 {
		return m.allreduce(mpiInPlace, unsafe.Pointer(&x[0]), n, m.dbl, op, m.world)
	})
}

// GatherHost implements Comm.
func (m *MPI) GatherHost(send, recv []byte) error {
	if len(recv) != m.size*len(send) {
		return fmt.Errorf("mpi: gather of parts of %d bytes into %d over %d ranks", len(send), len(recv), m.size)
	}
	if len(send) == 0 {
		return nil
	}
	return m.call("gather", len(send), func(n int32) int32 {
		return m.allgather(unsafe.Pointer(&send[0]), n, m.byte_, unsafe.Pointer(&recv[0]), n, m.byte_, m.world)
	})
}

// Close implements Comm: MPI_Finalize, which waits for every rank to arrive.
func (m *MPI) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if rc := m.finalize(); rc != 0 {
		return fmt.Errorf("mpi: MPI_Finalize failed (error %d)", rc)
	}
	return nil
}
