//go:build linux

package cudabackend

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"gochat/dist"
	"gochat/internal/arena"

	"github.com/ebitengine/purego"
)

// NCCL's constants (nccl.h).
const (
	ncclUniqueIDBytes = 128
	ncclUint8         = 1
	ncclFloat32       = 7
	ncclFloat64       = 8
	ncclSum           = 0
	ncclMax           = 2
)

// ncclUniqueID is ncclUniqueId, which ncclCommInitRank takes by value.
type ncclUniqueID struct{ internal [ncclUniqueIDBytes]byte }

// ncclLib holds the functions of libnccl gochat calls.
type ncclLib struct {
	version       func(*int32) int32
	uniqueID      func(*ncclUniqueID) int32
	initRank      func(comm *uintptr, size int32, id ncclUniqueID, rank int32) int32
	destroy       func(comm uintptr) int32
	errorString   func(code int32) string
	allReduce     func(send, recv uintptr, count uint64, dtype, op int32, comm, stream uintptr) int32
	reduceScatter func(send, recv uintptr, count uint64, dtype, op int32, comm, stream uintptr) int32
	allGather     func(send, recv uintptr, count uint64, dtype int32, comm, stream uintptr) int32
}

var (
	ncclOnce   sync.Once
	ncclLoaded *ncclLib
	ncclErr    error
)

// loadNCCL opens libnccl (GOCHAT_NCCL, else libnccl.so.2 on the loader's path: PyTorch's
// wheels bring one, under nvidia/nccl/lib), once.
func loadNCCL() (*ncclLib, error) {
	ncclOnce.Do(func() {
		lib, err := openFirst("GOCHAT_NCCL", []string{"libnccl.so.2", "libnccl.so"})
		if err != nil {
			ncclErr = fmt.Errorf("nccl: %w", err)
			return
		}
		n := &ncclLib{}
		for _, f := range []struct {
			fn   any
			name string
		}{
			{&n.version, "ncclGetVersion"}, {&n.uniqueID, "ncclGetUniqueId"}, {&n.initRank, "ncclCommInitRank"},
			{&n.destroy, "ncclCommDestroy"}, {&n.errorString, "ncclGetErrorString"}, {&n.allReduce, "ncclAllReduce"},
			{&n.reduceScatter, "ncclReduceScatter"}, {&n.allGather, "ncclAllGather"},
		} {
			if _, err := purego.Dlsym(lib, f.name); err != nil {
				ncclErr = fmt.Errorf("nccl: the library lacks %s", f.name)
				return
			}
			purego.RegisterLibFunc(f.fn, lib, f.name)
		}
		ncclLoaded = n
	})
	return ncclLoaded, ncclErr
}

// NewGroupID implements dist.Collective: a fresh NCCL unique id. Under gochat's launcher
// (NCCL_COMM_ID in the environment) every rank gets the same id, that address's.
func (e *Engine) NewGroupID() ([]byte, error) {
	lib, err := loadNCCL()
	if err != nil {
		return nil, err
	}
	var id ncclUniqueID
	if code := lib.uniqueID(&id); code != 0 {
		return nil, fmt.Errorf("ncclGetUniqueId: %s", lib.describe(code))
	}
	return id.internal[:], nil
}

func (n *ncclLib) describe(code int32) string {
	return fmt.Sprintf("%s (NCCL error %d)", n.errorString(code), code)
}

// NCCL is a dist.Comm over NVIDIA's NCCL on the engine's GPU. The collectives of float32
// run on the engine's tensors where they lie (its managed memory, on the stream its kernels
// use, so that they follow the work queued before them); the host ones go through a small
// buffer of device memory. Each returns when its result is there.
type NCCL struct {
	e          *Engine
	lib        *ncclLib
	comm       uintptr
	rank, size int
	watchdog   dist.Watchdog
	mu         sync.Mutex
	host       uintptr // device memory for the host collectives
	hostBytes  int
	closed     bool
}

// JoinGroup implements dist.Collective: it joins the NCCL group id names as rank of size,
// once every rank has arrived (within timeout).
func (e *Engine) JoinGroup(id []byte, rank, size int, timeout time.Duration) (dist.Comm, error) {
	lib, err := loadNCCL()
	if err != nil {
		return nil, err
	}
	if len(id) != ncclUniqueIDBytes {
		return nil, fmt.Errorf("nccl: a group id of %d bytes, want %d", len(id), ncclUniqueIDBytes)
	}
	if timeout <= 0 {
		timeout = dist.DefaultTimeout
	}
	var uid ncclUniqueID
	copy(uid.internal[:], id)
	n := &NCCL{e: e, lib: lib, rank: rank, size: size, watchdog: dist.Watchdog{Rank: rank, Size: size, Timeout: timeout}}
	var code int32
	n.watchdog.Guard("joining the NCCL group", func() {
		e.b.w.wait(func() {
			code = lib.initRank(&n.comm, int32(size), uid, int32(rank))
		})
	})
	if code != 0 {
		return nil, fmt.Errorf("ncclCommInitRank (rank %d of %d): %s", rank, size, lib.describe(code))
	}
	return n, nil
}

// Rank implements dist.Comm.
func (n *NCCL) Rank() int { return n.rank }

// Size implements dist.Comm.
func (n *NCCL) Size() int { return n.size }

// run queues the collective what after the engine's work and waits, under the watchdog,
// until the device has done both.
func (n *NCCL) run(what string, enqueue func() int32) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("nccl: %s after Close", what)
	}
	var code, synced int32
	n.watchdog.Guard(what, func() {
		n.e.b.w.wait(func() {
			if code = enqueue(); code == 0 {
				synced = n.e.b.rt.synchronize()
			}
		})
	})
	if code != 0 {
		return fmt.Errorf("nccl: %s: %s", what, n.lib.describe(code))
	}
	if synced != 0 {
		return fmt.Errorf("nccl: %s: %s", what, n.e.b.rt.describe(synced))
	}
	return nil
}

// device is x's address, which must be the engine's memory.
func (n *NCCL) device(x []float32) (uintptr, error) {
	if len(x) == 0 || !arena.Holds(&n.e.memory, x) {
		return 0, errors.New("nccl: a buffer outside the engine's memory (make it with Make)")
	}
	return uintptr(unsafe.Pointer(&x[0])), nil
}

// devices is device for a collective's send and receive buffers.
func (n *NCCL) devices(send, recv []float32) (s, r uintptr, err error) {
	if s, err = n.device(send); err == nil {
		r, err = n.device(recv)
	}
	return s, r, err
}

// AllReduce implements dist.Comm.
func (n *NCCL) AllReduce(x []float32) error {
	p, err := n.device(x)
	if err != nil {
		return err
	}
	return n.run("sum", func() int32 { return n.lib.allReduce(p, p, uint64(len(x)), ncclFloat32, ncclSum, n.comm, 0) })
}

// ReduceScatter implements dist.Comm.
func (n *NCCL) ReduceScatter(send, recv []float32) error {
	if len(send) != n.size*len(recv) {
		return fmt.Errorf("nccl: reduce-scatter of %d floats into parts of %d over %d ranks", len(send), len(recv), n.size)
	}
	s, r, err := n.devices(send, recv)
	if err != nil {
		return err
	}
	return n.run("reduce-scatter", func() int32 {
		return n.lib.reduceScatter(s, r, uint64(len(recv)), ncclFloat32, ncclSum, n.comm, 0)
	})
}

// AllGather implements dist.Comm.
func (n *NCCL) AllGather(send, recv []float32) error {
	if len(recv) != n.size*len(send) {
		return fmt.Errorf("nccl: all-gather of parts of %d floats into %d over %d ranks", len(send), len(recv), n.size)
	}
	s, r, err := n.devices(send, recv)
	if err != nil {
		return err
	}
	return n.run("all-gather", func() int32 { return n.lib.allGather(s, r, uint64(len(send)), ncclFloat32, n.comm, 0) })
}

// SumHost implements dist.Comm.
func (n *NCCL) SumHost(x []float64) error { return n.reduceHost("sum", x, ncclSum) }

// MaxHost implements dist.Comm.
func (n *NCCL) MaxHost(x []float64) error { return n.reduceHost("maximum", x, ncclMax) }

// reduceHost reduces host float64s through the device buffer.
func (n *NCCL) reduceHost(what string, x []float64, op int32) error {
	if len(x) == 0 {
		return nil
	}
	bytes := 8 * len(x)
	return n.throughDevice(what, unsafe.Pointer(&x[0]), 0, bytes, unsafe.Pointer(&x[0]), bytes, func(buf uintptr) int32 {
		return n.lib.allReduce(buf, buf, uint64(len(x)), ncclFloat64, op, n.comm, 0)
	})
}

// GatherHost implements dist.Comm: every rank's send lands in its place of the device
// buffer, which is gathered in place.
func (n *NCCL) GatherHost(send, recv []byte) error {
	if len(recv) != n.size*len(send) {
		return fmt.Errorf("nccl: gather of %d bytes into %d over %d ranks", len(send), len(recv), n.size)
	}
	if len(send) == 0 {
		return nil
	}
	at := n.rank * len(send)
	return n.throughDevice("gather", unsafe.Pointer(&send[0]), at, len(send), unsafe.Pointer(&recv[0]), len(recv), func(buf uintptr) int32 {
		return n.lib.allGather(buf+uintptr(at), buf, uint64(len(send)), ncclUint8, n.comm, 0)
	})
}

// throughDevice copies in bytes of host memory to offset at of the device buffer, runs the
// collective on the buffer and copies out bytes of it back to the host.
func (n *NCCL) throughDevice(what string, in unsafe.Pointer, at, inBytes int, out unsafe.Pointer, outBytes int, collective func(buf uintptr) int32) error {
	if err := n.reserve(max(at+inBytes, outBytes)); err != nil {
		return err
	}
	rt := n.e.b.rt
	var copied int32
	n.e.b.w.wait(func() { copied = rt.copyToDevice(n.host+uintptr(at), in, uint64(inBytes), cudaMemcpyHostToDev) })
	if copied != 0 {
		return fmt.Errorf("nccl: %s: %s", what, rt.describe(copied))
	}
	if err := n.run(what, func() int32 { return collective(n.host) }); err != nil {
		return err
	}
	n.e.b.w.wait(func() { copied = rt.copyToHost(out, n.host, uint64(outBytes), cudaMemcpyDevToHost) })
	if copied != 0 {
		return fmt.Errorf("nccl: %s: %s", what, rt.describe(copied))
	}
	return nil
}

// reserve makes the device buffer at least bytes long.
func (n *NCCL) reserve(bytes int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if bytes <= n.hostBytes {
		return nil
	}
	rt := n.e.b.rt
	var code int32
	n.e.b.w.wait(func() {
		if n.host != 0 {
			rt.free(n.host)
		}
		n.host, n.hostBytes = 0, 0
		if code = rt.malloc(&n.host, uint64(bytes)); code == 0 {
			n.hostBytes = bytes
		}
	})
	if code != 0 {
		return fmt.Errorf("nccl: cudaMalloc of %d bytes: %s", bytes, rt.describe(code))
	}
	return nil
}

// Close implements dist.Comm: it leaves the group and frees the buffer.
func (n *NCCL) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var code int32
	n.e.b.w.wait(func() {
		code = n.lib.destroy(n.comm)
		if n.host != 0 {
			n.e.b.rt.free(n.host)
		}
	})
	if code != 0 {
		return fmt.Errorf("ncclCommDestroy: %s", n.lib.describe(code))
	}
	return nil
}
