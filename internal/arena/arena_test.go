package arena

import (
	"errors"
	"testing"
	"unsafe"

	"gorgonia.org/tensor"
)

// goChunks makes chunks of Go memory (kept alive by the test) for the arena to carve.
func goChunks(keep *[][]byte, align uintptr) func(uintptr) (Chunk, error) {
	return func(size uintptr) (Chunk, error) {
		b := make([]byte, size+align)
		*keep = append(*keep, b)
		p := unsafe.Pointer(&b[0])
		p = unsafe.Add(p, (align-uintptr(p)%align)%align)
		return Chunk{Base: p, Size: size, Handle: uintptr(len(*keep))}, nil
	}
}

func TestAllocAndFind(t *testing.T) {
	var keep [][]byte
	a := &Arena{MinChunk: 1024, Align: 256, New: goChunks(&keep, 256)}
	p1, _ := a.Alloc(10)
	p2, _ := a.Alloc(300)
	if uintptr(p2)-uintptr(p1) != 256 || uintptr(p1)%256 != 0 {
		t.Fatalf("pieces at %p and %p: want consecutive 256-byte-aligned pieces", p1, p2)
	}
	p3, _ := a.Alloc(600) // 256 + 512 used of 1024: a new chunk
	if len(keep) != 2 {
		t.Fatalf("%d chunks, want 2", len(keep))
	}
	big, _ := a.Alloc(5000) // larger than MinChunk: a chunk of its own
	if len(keep) != 3 || a.Total() != 1024+1024+5120 {
		t.Fatalf("%d chunks of %d bytes in all", len(keep), a.Total())
	}
	c, off, ok := a.Find(unsafe.Add(p2, 4), 200)
	if !ok || c.Handle != 1 || off != 256+4 {
		t.Fatalf("Find in the first chunk: %v, chunk %d, offset %d", ok, c.Handle, off)
	}
	if c, off, ok := a.Find(p3, 600); !ok || c.Handle != 2 || off != 0 {
		t.Fatalf("Find of the third piece: %v, chunk %d, offset %d", ok, c.Handle, off)
	}
	if _, _, ok := a.Find(unsafe.Add(p3, 1000), 100); ok {
		t.Fatal("a range past its chunk's end was found")
	}
	x := unsafe.Slice((*float32)(big), 1250)
	if !Holds(a, x) || !Holds(a, x[:0]) || Holds(a, make([]float32, 4)) {
		t.Fatal("Holds is wrong for the arena's memory or Go's")
	}
}

func TestFailures(t *testing.T) {
	a := &Arena{MinChunk: 64, Align: 64, New: func(uintptr) (Chunk, error) { return Chunk{}, errors.New("out of memory") }}
	if _, err := a.Alloc(8); err == nil {
		t.Fatal("an allocator's failure was lost")
	}
	var keep [][]byte
	a = &Arena{MinChunk: 64, Align: 64, New: func(size uintptr) (Chunk, error) {
		c, err := goChunks(&keep, 64)(size)
		c.Size /= 2 // an allocator that gives less than asked
		return c, err
	}}
	if _, err := a.Alloc(64); err == nil {
		t.Fatal("a chunk too small was accepted")
	}
}

func TestTyped(t *testing.T) {
	var keep [][]byte
	a := &Arena{MinChunk: 1024, Align: 64, New: goChunks(&keep, 64)}
	p, _ := a.Alloc(64)
	f, ok := Typed(p, tensor.Float32, 16).([]float32)
	n, ok2 := Typed(p, tensor.Int, 8).([]int)
	if !ok || !ok2 || len(f) != 16 || len(n) != 8 || unsafe.Pointer(&f[0]) != p || unsafe.Pointer(&n[0]) != p {
		t.Fatalf("Typed gave %T of %d and %T of %d", f, len(f), n, len(n))
	}
}
