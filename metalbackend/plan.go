package metalbackend

import (
	"fmt"
	"strconv"
	"unsafe"

	"gochat/backend"
	"gochat/internal/arena"
)

// MinFLOPs is the size (2·m·n·k) from which a product goes to the GPU: below it the
// encoding and the wait cost more than Accelerate takes. GOCHAT_METAL_MIN_FLOPS sets
// another (0: every product, as the golden test wants to check the GPU's arithmetic).
const MinFLOPs = 1 << 26

// minFLOPs reads the threshold from the environment's value v ("" for the default).
func minFLOPs(v string) (int, error) {
	if v == "" {
		return MinFLOPs, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("GOCHAT_METAL_MIN_FLOPS=%q: want a number of FLOPs", v)
	}
	return n, nil
}

// MPSDataTypeFloat32 is MPSDataType's code for float32 (MPSCoreTypes.h).
const MPSDataTypeFloat32 = 0x10000020

// operand is one matrix of a product as MPS sees it: stored row-major with rows, columns
// and a row stride in bytes, starting at byte offset in its buffer, and its length in
// elements (what the buffer must hold from offset on).
type operand struct {
	Rows, Cols, RowBytes int
	Offset               int
	Elems                int
}

// plan is a row-major Sgemm as one MPSMatrixMultiplication. MPS matrices are row-major
// like gochat's, so the stored matrices go as they are and op() becomes transposeLeft and
// transposeRight; each operand gets its own region of the staging buffer.
type plan struct {
	A, B, C        operand
	TransA, TransB bool
	M, N, K        int
	Bytes          int // staging bytes for the three operands
}

// align is the alignment of each operand in the staging buffer: MPS wants matrix offsets
// and row strides in whole elements; 256 bytes keeps every operand on its own cache lines.
const align = 256

// planGemm checks an Sgemm call's geometry and lays its operands out for MPS.
func planGemm(transA, transB bool, m, n, k, lda, ldb, ldc int) (plan, error) {
	p := plan{TransA: transA, TransB: transB, M: m, N: n, K: k}
	if m <= 0 || n <= 0 || k <= 0 {
		return p, fmt.Errorf("metal: empty product %d×%d×%d", m, n, k)
	}
	ra, ca := backend.Stored(transA, m, k)
	rb, cb := backend.Stored(transB, k, n)
	offset := 0
	for _, o := range []struct {
		op             *operand
		rows, cols, ld int
	}{{&p.A, ra, ca, lda}, {&p.B, rb, cb, ldb}, {&p.C, m, n, ldc}} {
		if o.ld < o.cols {
			return p, fmt.Errorf("metal: row stride %d under %d columns", o.ld, o.cols)
		}
		*o.op = operand{Rows: o.rows, Cols: o.cols, RowBytes: 4 * o.ld, Offset: offset, Elems: backend.Span(o.rows, o.cols, o.ld)}
		offset += (4*o.op.Elems + align - 1) / align * align
	}
	p.Bytes = offset
	return p, nil
}

// placed is p with its operands at the given byte offsets (A, B, C), each in a buffer of its
// own: a product of tensors that already live in shared buffers.
func (p plan) placed(offsets [3]int) plan {
	p.A.Offset, p.B.Offset, p.C.Offset = offsets[0], offsets[1], offsets[2]
	p.Bytes = 0
	return p
}

// place finds p's operands (a, b and c, at least as long as p says) in the arena's buffers:
// p placed at their offsets and the buffers' handles, or false when one of them is other
// memory.
func place(mem *arena.Arena, p plan, a, b, c []float32) (plan, [3]uintptr, bool) {
	var handles [3]uintptr
	var offsets [3]int
	for i, x := range [][]float32{a[:p.A.Elems], b[:p.B.Elems], c[:p.C.Elems]} {
		chunk, offset, ok := mem.Find(unsafe.Pointer(&x[0]), uintptr(4*len(x)))
		if !ok {
			return p, handles, false
		}
		handles[i], offsets[i] = chunk.Handle, int(offset)
	}
	return p.placed(offsets), handles, true
}

// worth says whether a product is large enough for the GPU.
func worth(m, n, k, min int) bool { return 2*m*n*k >= min }

// grow is the staging size to allocate for need bytes: at least twice what it was, so that
// a run of growing products reallocates a few times only, rounded to whole pages.
func grow(have, need, page int) int {
	if need <= have {
		return have
	}
	size := max(need, 2*have)
	return (size + page - 1) / page * page
}
