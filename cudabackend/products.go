//go:build linux

package cudabackend

import (
	"fmt"
	"unsafe"

	"gochat/backend"
	"gochat/internal/arena"
)

// Sgemm implements backend.Gemm. A product of the engine's memory is queued on the GPU as
// it is. One of host memory and the engine's (the generation model's activations against
// its weights, once Cached.Place put them here) runs on the GPU as well when it is worth
// the host operands' copies: the engine's operands are read where they lie. Any other goes
// through the BLAS, after the queued work when it reads the engine's memory.
func (e *Engine) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	spanA, spanB, spanC := backend.Spans(transA, transB, m, n, k, lda, ldb, ldc)
	held := func(x []float32, span int) bool { return len(x) >= span && arena.Holds(&e.memory, x[:span]) }
	e.b.mu.Lock()
	inA, inB, inC := held(a, spanA), held(bm, spanB), held(c, spanC)
	if inA && inB && inC {
		e.gemm(transA, transB, m, n, k, alpha, e.ptr(a[:spanA]), lda, e.ptr(bm[:spanB]), ldb, beta, e.ptr(c[:spanC]), ldc)
		e.b.mu.Unlock()
		return
	}
	copied := 0 // the bytes a mixed product copies, as BLAS.run copies them
	if !inA {
		copied += 4 * spanA
	}
	if !inB {
		copied += 4 * spanB
	}
	if !inC {
		copied += 4 * spanC // back
		if beta != 0 || (m > 1 && ldc != n) {
			copied += 4 * spanC // and there
		}
	}
	flops := 2 * float64(m) * float64(n) * float64(k)
	whole := len(a) >= spanA && len(bm) >= spanB && len(c) >= spanC // else the BLAS says what is short
	if (inA || inB || inC) && whole && k > 0 && (e.b.min == 0 || flops >= MinIntensity*float64(copied)) {
		if on, ok := e.operands(a[:spanA], bm[:spanB], inA, inB); ok &&
			e.b.tryGPU(transA, transB, m, n, k, alpha, a[:spanA], lda, bm[:spanB], ldb, beta, c[:spanC], ldc, on) {
			e.b.mu.Unlock()
			return
		}
	}
	if inA || inB || inC { // the host is to read or write what queued work may still use
		e.b.w.wait(e.sync)
	}
	e.b.mu.Unlock()
	e.b.Sgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// operands says where a mixed product's operands lie on the device (0: in host memory): the
// engine's own where they are; with bfloat16 products, A and B in bfloat16 copies the
// engine rounds them into first (queued now, so done before the product). ok is false when
// those copies cannot be made (the engine has failed, or their memory could not be had):
// the product then runs elsewhere. The caller holds b.mu.
func (e *Engine) operands(a, bm []float32, inA, inB bool) (on func([]float32) uintptr, ok bool) {
	var halfA, halfB uintptr
	if e.b.prec == BF16 {
		if inA {
			halfA = e.roundHalves(scratchHalfA, e.ptr(a), len(a))
		}
		if inB {
			halfB = e.roundHalves(scratchHalfB, e.ptr(bm), len(bm))
		}
		if e.err() != nil || inA && halfA == 0 || inB && halfB == 0 {
			return nil, false
		}
	}
	return func(x []float32) uintptr {
		switch {
		case len(x) == 0 || !arena.Holds(&e.memory, x):
			return 0
		case halfA != 0 && &x[0] == &a[0]:
			return halfA
		case halfB != 0 && &x[0] == &bm[0]:
			return halfB
		}
		return uintptr(unsafe.Pointer(&x[0]))
	}, true
}

// Dgemm runs on the host: float64 is for tests and checks.
func (e *Engine) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, bm []float64, ldb int, beta float64, c []float64, ldc int) {
	e.b.Dgemm(transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// gemm queues a row-major product of device memory in the engine's precision; the caller
// holds b.mu.
func (e *Engine) gemm(transA, transB bool, m, n, k int, alpha float32, dA uintptr, lda int, dB uintptr, ldb int, beta float32, dC uintptr, ldc int) {
	if e.b.prec == BF16 {
		spanA, spanB, _ := backend.Spans(transA, transB, m, n, k, lda, ldb, ldc)
		hA, hB := e.bf16Operands(dA, spanA, dB, spanB)
		e.queue("cublasGemmEx (bf16)", func() error {
			return e.b.gemmBF16(transA, transB, m, n, k, alpha, hA, lda, hB, ldb, beta, dC, ldc)
		})
		e.halves.mark = e.queued.Load()
		return
	}
	e.queue("cublasSgemm", func() error {
		return e.b.gemm(transA, transB, m, n, k, alpha, dA, lda, dB, ldb, beta, dC, ldc)
	})
}

// halfCache says which float32 operands the two bfloat16 scratch buffers hold: the last
// product's A and B. They still hold them while nothing else has been queued since that
// product (no kernel can have written them, and the product writes neither: C never
// overlaps its operands) and no Sync has let the host write: then the next product
// rounds only what it does not share. A gradient's two products, dX = dY·W and
// dW = dYᵀ·X, share dY, so this spares a third of the backward pass's roundings.
type halfCache struct {
	src  [2]uintptr // the float32 operand each buffer holds rounded
	n    [2]int     // its floats
	mark uint64     // Engine.queued just after that product was queued
}

// bf16Operands returns A's and B's bfloat16 copies in the scratch buffers, rounding those
// the last product did not leave there.
func (e *Engine) bf16Operands(a uintptr, na int, b uintptr, nb int) (ha, hb uintptr) {
	c := &e.halves
	fresh := c.mark == e.queued.Load()
	held := func(p uintptr, n int) int { // the buffer holding p's n floats, or -1
		for i := range c.src {
			if fresh && c.src[i] == p && c.n[i] >= n {
				return i
			}
		}
		return -1
	}
	sa, sb := held(a, na), held(b, nb)
	round := func(slot int, p uintptr, n int) uintptr {
		c.src[slot], c.n[slot] = p, n
		return e.roundHalves(scratchHalfA+slot, p, n)
	}
	switch { // each operand in the buffer that holds it, else in the one the other leaves
	case sa < 0 && sb < 0:
		return round(0, a, na), round(1, b, nb)
	case sa < 0:
		return round(1-sb, a, na), e.scratch[scratchHalfA+sb].ptr
	case sb < 0:
		return e.scratch[scratchHalfA+sa].ptr, round(1-sa, b, nb)
	}
	return e.scratch[scratchHalfA+sa].ptr, e.scratch[scratchHalfA+sb].ptr
}

// roundHalves queues the rounding of n floats at p to bfloat16 into scratch buffer i.
func (e *Engine) roundHalves(i int, p uintptr, n int) uintptr {
	h := e.reserve(i, uint64(2*n))
	e.launch("toBF16", elementwiseBlocks((n+3)/4), 256, h, p, n)
	return h
}

// batch is one batched product's operand addresses, one per product.
type batch struct{ a, b, c []uintptr }

func (bt *batch) add(a, b, c uintptr) {
	bt.a, bt.b, bt.c = append(bt.a, a), append(bt.b, b), append(bt.c, c)
}

// batched queues the products C_i = alpha·op(A_i)·op(B_i) + beta·C_i, all of one shape and
// strides, as one cuBLAS call profiled under label, in the handle's math mode (TF32 but for
// the strict cuda engine: bfloat16 engines too). The pointer arrays go to the device once and are kept by content.
func (e *Engine) batched(label string, transA, transB bool, m, n, k int, alpha float32, lda, ldb int, beta float32, ldc int, bt batch) {
	if len(bt.c) == 0 {
		return
	}
	op := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	if len(bt.c) == 1 { // cuBLAS's batched kernels are slower on one product than its own
		e.queue("cublasSgemm ("+label+")", func() error {
			return e.b.gemm(transA, transB, m, n, k, alpha, bt.a[0], lda, bt.b[0], ldb, beta, bt.c[0], ldc)
		})
		return
	}
	pa, pb, pc := e.pointerArray(bt.a), e.pointerArray(bt.b), e.pointerArray(bt.c)
	// Row-major C is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, as in BLAS.gemm.
	e.queue("cublasSgemmBatched ("+label+")", func() error {
		if code := e.b.rt.sgemmBatched(e.b.handle, op(transB), op(transA), int32(n), int32(m), int32(k), &alpha, pb, int32(ldb),
			pa, int32(lda), &beta, pc, int32(ldc), int32(len(bt.c))); code != 0 {
			return fmt.Errorf("cublasSgemmBatched: status %d%s", code, e.b.rt.pending())
		}
		return nil
	})
}

// pointerArray returns a device copy of ptrs, made on first use.
func (e *Engine) pointerArray(ptrs []uintptr) uintptr {
	key := string(unsafe.Slice((*byte)(unsafe.Pointer(&ptrs[0])), 8*len(ptrs)))
	if p, ok := e.pointers[key]; ok {
		return p
	}
	p := e.upload(unsafe.Pointer(&ptrs[0]), 8*len(ptrs))
	if p != 0 {
		e.pointers[key] = p
	}
	return p
}
