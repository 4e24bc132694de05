//go:build linux

package cudabackend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"gorgonia.org/tensor"
)

// TestBF16Rounding: the device's rounding to bfloat16 gives ToBF16's bits for every float,
// ties, NaNs, infinities, subnormals and the largest floats (which round to infinity)
// included, from sources aligned for four floats a thread and not, for lengths that leave
// a tail and one past the grid's threads.
func TestBF16Rounding(t *testing.T) {
	e := engineOf(t, BF16)
	r := rand.New(rand.NewPCG(3, 4))
	special := []uint32{0x3f808000, 0x3f818000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
		0x7fc00001, 0xffbfffff, 0x00000001, 0x80008000, 0x00ff8000, 0}
	for _, n := range []int{1, 3, 4, 5, 1023, 4097, 1<<26 + 7} {
		hx := make([]float32, n+3)
		for i := range hx {
			hx[i] = math.Float32frombits(r.Uint32())
			if i%5 == 0 {
				hx[i] = math.Float32frombits(special[(i/5)%len(special)])
			}
		}
		x := put(e, hx)
		for _, off := range []int{0, 1, 2, 3} {
			if n > 1<<20 && off > 1 {
				continue
			}
			src := x[off : off+n]
			out := e.Make(tensor.Float32, (n+1)/2).([]float32)
			e.b.mu.Lock()
			h := e.roundHalves(scratchHalfA, e.ptr(src), n)
			e.copyBytes(e.ptr(out), h, 2*n)
			e.b.mu.Unlock()
			rounded := make([]float32, len(out))
			if err := e.CopyToHost(rounded, out); err != nil {
				t.Fatalf("n %d, offset %d: %v", n, off, err)
			}
			got := unsafe.Slice((*uint16)(unsafe.Pointer(&rounded[0])), n)
			for i, f := range hx[off : off+n] {
				if want := ToBF16(f); got[i] != want {
					t.Fatalf("n %d, offset %d: float %d (%#08x) rounds to %#04x on the device, %#04x in Go", n, off, i, math.Float32bits(f), got[i], want)
				}
			}
		}
	}
}

// TestBF16OperandReuse: a product sharing an operand with the one before it (a gradient's
// dX = dY·W and dW = dYᵀ·X) rounds it once, and computes what it does after a Sync, which
// forgets every rounding; a kernel writing the shared operand between the two, or the host
// (a copy into it), makes the next product round it again.
func TestBF16OperandReuse(t *testing.T) {
	e := engineOf(t, BF16)
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 96, 64, 80
	dY, w, x := random(e, r, m*n, 1), random(e, r, n*k, 1), random(e, r, m*k, 1)
	dX, dW := e.Make(tensor.Float32, m*k).([]float32), e.Make(tensor.Float32, n*k).([]float32)
	products := func(dY []float32) {
		e.Sgemm(false, false, m, k, n, 1, dY, n, w, k, 0, dX, k)
		e.Sgemm(true, false, n, k, m, 1, dY, n, x, k, 0, dW, k)
	}
	alone := func(dY []float32) (dX2, dW2 []float32) { // each product after a Sync
		dX2, dW2 = e.Make(tensor.Float32, m*k).([]float32), e.Make(tensor.Float32, n*k).([]float32)
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		e.Sgemm(false, false, m, k, n, 1, dY, n, w, k, 0, dX2, k)
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		e.Sgemm(true, false, n, k, m, 1, dY, n, x, k, 0, dW2, k)
		return dX2, dW2
	}

	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	e.StartProfile()
	products(dY)
	times, err := e.StopProfile()
	if err != nil {
		t.Fatal(err)
	}
	if got := times["toBF16"].Calls; got != 3 {
		t.Errorf("two products sharing dY rounded %d operands, want 3 (dY once, W, X)", got)
	}
	wantX, wantW := alone(dY)
	same(t, e, "dX, dY shared", dX, wantX)
	same(t, e, "dW, dY shared", dW, wantW)

	for _, c := range []struct {
		name  string
		write func() // between the two products, on dY
	}{
		{"a kernel scaling dY", func() { e.Scale(dY, 2) }},
		{"the host writing dY, scaled", func() {
			h := read(t, e, dY)
			for i := range h {
				h[i] *= 3
			}
			if err := e.CopyFromHost(dY, h); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		e.Sgemm(false, false, m, k, n, 1, dY, n, w, k, 0, dX, k)
		c.write()
		e.Sgemm(true, false, n, k, m, 1, dY, n, x, k, 0, dW, k)
		_, wantW := alone(dY)
		same(t, e, fmt.Sprintf("dW after %s", c.name), dW, wantW)
	}
}
