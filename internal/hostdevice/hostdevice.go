// Package hostdevice is a layers.Device and optimizers.Device that runs on the host: its
// memory is Go's, carved out of chunks as an accelerator's is, and its kernels are the Go
// kernels of layers and optimizers. It lets the tests of this machine, which has no GPU,
// check what an accelerator engine depends on: that every op and every optimizer step hands
// its work to the device, that everything a kernel gets is the device's memory (a slice of
// other memory is reported by the next Sync, as a GPU engine reports it), and that the
// device paths of the graph and the optimizers compute what the CPU paths do. It counts the
// calls of each kernel.
package hostdevice

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"gochat/cpubackend"
	"gochat/internal/arena"
	"gochat/layers"
	"gochat/optimizers"

	"gorgonia.org/tensor"
)

// Device is the CPU engine over a BLAS, with the device's interfaces.
type Device struct {
	*cpubackend.Engine
	mu     sync.Mutex
	calls  map[string]int
	memory arena.Arena
	chunks [][]byte // the Go memory the arena carves, kept alive
	failed error
}

// New returns a device over blas.
func New(blas cpubackend.BLAS) *Device {
	d := &Device{Engine: cpubackend.New(blas), calls: map[string]int{}}
	d.memory = arena.Arena{MinChunk: 1 << 20, Align: 64, New: func(size uintptr) (arena.Chunk, error) {
		b := make([]byte, size+64)
		d.chunks = append(d.chunks, b)
		p := unsafe.Pointer(&b[0])
		return arena.Chunk{Base: unsafe.Add(p, (64-uintptr(p)%64)%64), Size: size}, nil
	}}
	return d
}

// Calls returns how many times each kernel ran, and starts counting again.
func (d *Device) Calls() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = map[string]int{}
	return c
}

// count records a call of kernel and checks that its slices ([]float32 or []int) are the
// device's memory.
func (d *Device) count(kernel string, slices ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[kernel]++
	for _, x := range slices {
		held := true
		switch x := x.(type) {
		case []float32:
			held = arena.Holds(&d.memory, x)
		case []int:
			held = arena.Holds(&d.memory, x)
		}
		if !held && d.failed == nil {
			d.failed = fmt.Errorf("hostdevice: %s got a slice that is not the device's memory", kernel)
		}
	}
}

// Make implements layers.Memory.
func (d *Device) Make(dt tensor.Dtype, n int) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.memory.Alloc(uintptr(max(n, 1)) * uintptr(dt.Size()))
	if err != nil {
		panic(err)
	}
	return arena.Typed(p, dt, n)
}

// Sync implements layers.Memory: it reports the first slice a kernel got from elsewhere.
func (d *Device) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.failed
	d.failed = nil
	return err
}

func (d *Device) Zero(x []float32)        { d.count("Zero", x); clear(x) }
func (d *Device) Copy(dst, src []float32) { d.count("Copy", dst, src); copy(dst, src) }
func (d *Device) AddForward(y, a, b []float32) {
	d.count("AddForward", y, a, b)
	layers.AddForward(y, a, b)
}

func (d *Device) Scale(x []float32, a float32) {
	d.count("Scale", x)
	for i := range x {
		x[i] *= a
	}
}

func (d *Device) EmbeddingForward(y, table []float32, ids []int, width int) {
	d.count("EmbeddingForward", y, table, ids)
	if err := layers.EmbeddingForward(y, table, ids, width); err != nil {
		panic(err) // the op checks the ids first
	}
}

func (d *Device) EmbeddingBackward(dtable, dy []float32, ids []int, width int) {
	d.count("EmbeddingBackward", dtable, dy, ids)
	layers.EmbeddingBackward(dtable, dy, ids, width)
}

func (d *Device) RMSNormForward(y, x []float32, width, size, heads int) {
	d.count("RMSNormForward", y, x)
	layers.RMSNormForward(y, x, width, size, heads)
}

func (d *Device) RMSNormBackward(dx, x, dy []float32, width, size, heads int) {
	d.count("RMSNormBackward", dx, x, dy)
	layers.RMSNormBackward(dx, x, dy, width, size, heads)
}

func (d *Device) RotaryForward(y, x []float32, width int, r layers.Rotation, inverse bool) {
	d.count("RotaryForward", y, x)
	layers.RotaryForward(y, x, width, r, inverse)
}

func (d *Device) ReLU2Forward(y, x []float32) {
	d.count("ReLU2Forward", y, x)
	layers.ReLU2Forward(y, x)
}
func (d *Device) ReLU2Backward(dx, y, dy []float32) {
	d.count("ReLU2Backward", dx, y, dy)
	layers.ReLU2Backward(dx, y, dy)
}

func (d *Device) SoftcapForward(y, x []float32, cap float32) {
	d.count("SoftcapForward", y, x)
	layers.SoftcapForward(y, x, cap)
}

func (d *Device) SoftcapBackward(dx, y, dy []float32, cap float32) {
	d.count("SoftcapBackward", dx, y, dy)
	layers.SoftcapBackward(dx, y, dy, cap)
}

func (d *Device) AttentionForward(s layers.AttnShape, qkv, y, lse []float32) {
	d.count("AttentionForward", qkv, y, lse)
	q, k, v, out := layers.AttnViews(s, qkv, y)
	layers.AttentionForward[float32](d, s, q, k, v, out, lse, make([]float32, layers.AttnScratch(s)))
}

func (d *Device) AttentionBackward(s layers.AttnShape, qkv, y, dy, dqkv, lse []float32) {
	d.count("AttentionBackward", qkv, y, dy, dqkv, lse)
	q, k, v, out := layers.AttnViews(s, qkv, y)
	dq, dk, dv, dout := layers.AttnViews(s, dqkv, dy)
	layers.AttentionBackward[float32](d, s, q, k, v, out, dout, dq, dk, dv, lse, make([]float32, layers.AttnScratch(s)))
}

func (d *Device) CrossEntropyForward(losses, logits []float32, targets []int, vocab int, cap float32, grad, scale []float32) {
	d.count("CrossEntropyForward", losses, logits, targets, grad, scale)
	if err := layers.CrossEntropyForward(losses, logits, targets, vocab, cap, grad, scale); err != nil {
		panic(err) // the op checks the targets first
	}
}

func (d *Device) MuonMomentum(buf, g, upd []float32, mu float32) {
	d.count("MuonMomentum", buf, g, upd)
	for i := range buf {
		buf[i] += (1 - mu) * (g[i] - buf[i])
		upd[i] = g[i] + mu*(buf[i]-g[i])
	}
}

// NewtonSchulz runs the optimizers' CPU iteration, which takes its coefficients itself.
func (d *Device) NewtonSchulz(out, g [][]float32, rows, cols, steps int, _, _, _ float32) {
	var slices []any
	for i := range g {
		slices = append(slices, out[i], g[i])
	}
	d.count("NewtonSchulz", slices...)
	for i := range g {
		optimizers.NewtonSchulz(d.Engine, out[i], g[i], rows, cols, steps)
	}
}

func (d *Device) AdamW(p, g, m, v []float32, decay, lerp, beta2, step, invBC2, eps float32) {
	d.count("AdamW", p, g, m, v)
	for i := range p {
		m[i] += lerp * (g[i] - m[i])
		v[i] = beta2*v[i] + (1-beta2)*g[i]*g[i]
		p[i] = p[i]*decay - step*m[i]/(float32(math.Sqrt(float64(v[i])))*invBC2+eps)
	}
}

func (d *Device) Axpy(y, x []float32, a float32) {
	d.count("Axpy", y, x)
	for i := range y {
		y[i] += a * x[i]
	}
}

func (d *Device) SumSquares(xs [][]float32) (float64, error) {
	slices := make([]any, len(xs))
	for i, x := range xs {
		slices[i] = x
	}
	d.count("SumSquares", slices...)
	var ss float64
	for _, x := range xs {
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
	}
	return ss, nil
}
