package metalbackend

import (
	"testing"
	"unsafe"

	"gochat/internal/arena"
)

func TestPlanGemm(t *testing.T) {
	// C (4×5, ldc 6) = Aᵀ·B, A stored 3×4 (lda 4), B stored 3×5 (ldb 7).
	p, err := planGemm(true, false, 4, 5, 3, 4, 7, 6)
	if err != nil {
		t.Fatal(err)
	}
	if (p.A != operand{Rows: 3, Cols: 4, RowBytes: 16, Offset: 0, Elems: 12}) {
		t.Errorf("A %+v", p.A)
	}
	if (p.B != operand{Rows: 3, Cols: 5, RowBytes: 28, Offset: 256, Elems: 19}) {
		t.Errorf("B %+v", p.B)
	}
	if (p.C != operand{Rows: 4, Cols: 5, RowBytes: 24, Offset: 512, Elems: 23}) {
		t.Errorf("C %+v", p.C)
	}
	if p.Bytes != 768 || !p.TransA || p.TransB || p.M != 4 || p.N != 5 || p.K != 3 {
		t.Errorf("plan %+v", p)
	}
	// B transposed: stored n×k.
	p, _ = planGemm(false, true, 2, 3, 4, 4, 4, 3)
	if p.B.Rows != 3 || p.B.Cols != 4 || p.A.Rows != 2 || p.A.Cols != 4 {
		t.Errorf("transposed B: A %+v, B %+v", p.A, p.B)
	}
	for _, bad := range [][6]int{{0, 1, 1, 1, 1, 1}, {2, 2, 3, 2, 2, 2}, {2, 2, 2, 2, 1, 2}, {2, 3, 2, 2, 3, 2}} {
		if _, err := planGemm(false, false, bad[0], bad[1], bad[2], bad[3], bad[4], bad[5]); err == nil {
			t.Errorf("%v: planned", bad)
		}
	}
}

func TestWorthAndGrow(t *testing.T) {
	if worth(64, 64, 64, MinFLOPs) || !worth(1024, 1024, 64, MinFLOPs) || !worth(1, 1, 1, 0) {
		t.Error("threshold")
	}
	if n, err := minFLOPs(""); n != MinFLOPs || err != nil {
		t.Errorf("default threshold %d, %v", n, err)
	}
	if n, err := minFLOPs("0"); n != 0 || err != nil {
		t.Errorf("threshold 0: %d, %v", n, err)
	}
	if _, err := minFLOPs("-1"); err == nil {
		t.Error("a negative threshold")
	}
	const page = 16384 // Apple silicon's
	for _, c := range [][3]int{{0, 1, page}, {page, 100, page}, {page, page + 1, 2 * page}, {2 * page, 5 * page, 5 * page}, {4 * page, 5 * page, 8 * page}} {
		if got := grow(c[0], c[1], page); got != c[2] {
			t.Errorf("grow(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

// TestPlaced: a product of tensors already in shared buffers keeps its geometry and takes
// each operand's own offset, with nothing to stage.
func TestPlaced(t *testing.T) {
	p, err := planGemm(true, false, 5, 7, 3, 9, 8, 11)
	if err != nil {
		t.Fatal(err)
	}
	q := p.placed([3]int{1024, 4, 65536})
	if q.A.Offset != 1024 || q.B.Offset != 4 || q.C.Offset != 65536 || q.Bytes != 0 {
		t.Fatalf("offsets %d %d %d, staging %d", q.A.Offset, q.B.Offset, q.C.Offset, q.Bytes)
	}
	q.A.Offset, q.B.Offset, q.C.Offset, q.Bytes = p.A.Offset, p.B.Offset, p.C.Offset, p.Bytes
	if q != p {
		t.Fatalf("placing changed the geometry: %+v, want %+v", q, p)
	}
}

// TestPlace: operands carved out of the engine's buffers are found with their buffer and
// offset; one in other memory sends the product to the staged path.
func TestPlace(t *testing.T) {
	var keep [][]byte
	mem := &arena.Arena{MinChunk: 1 << 16, Align: 256, New: func(size uintptr) (arena.Chunk, error) {
		b := make([]byte, size+256)
		keep = append(keep, b)
		base := unsafe.Pointer(&b[0])
		return arena.Chunk{Base: unsafe.Add(base, (256-uintptr(base)%256)%256), Size: size, Handle: uintptr(len(keep))}, nil
	}}
	floats := func(n int) []float32 {
		p, err := mem.Alloc(uintptr(4 * n))
		if err != nil {
			t.Fatal(err)
		}
		return unsafe.Slice((*float32)(p), n)
	}
	a, b := floats(16+8*16), floats(1<<15) // a takes 768 bytes of the first buffer; b a buffer of its own
	c := floats(8 * 4)
	p, err := planGemm(false, true, 8, 4, 16, 16, 16, 4)
	if err != nil {
		t.Fatal(err)
	}
	q, handles, ok := place(mem, p, a[16:], b[64:], c)
	if !ok || handles != [3]uintptr{1, 2, 1} {
		t.Fatalf("placed %v in buffers %v", ok, handles)
	}
	if q.A.Offset != 4*16 || q.B.Offset != 4*64 || q.C.Offset != 768 {
		t.Fatalf("offsets %d %d %d, want 64, 256 and 768", q.A.Offset, q.B.Offset, q.C.Offset)
	}
	if _, _, ok := place(mem, p, a, make([]float32, 64), c); ok {
		t.Fatal("an operand in Go memory was placed")
	}
}
