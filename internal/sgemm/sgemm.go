// Package sgemm is a single-precision matrix product in pure Go and Go assembly, for machines
// without a system BLAS. It follows the Goto/BLIS design: the operands are copied into packed
// panels, so that transposes and strides are handled once, and a register-blocked
// microkernel in assembly computes an mr×nr tile of C from an mr×kc panel of op(A) and a kc×nr
// panel of op(B), keeping the tile in registers for the whole of kc.
//
// The loops, outermost first:
//
//	jc: columns of C in blocks of nc
//	pc: the inner dimension in blocks of kc; op(B)[pc:pc+kc, jc:jc+nc] is packed (L2)
//	ir: rows of C in steps of mr; op(A)[ir:ir+mr, pc:pc+kc] is packed (L1)
//	jr: columns in steps of nr; the microkernel streams its B panel from L2
//
// The packed A panel, mr×kc, stays in L1 while the microkernel sweeps the B block, kc×nc,
// which stays in L2. On the Sapphire Rapids this was tuned on (48 KiB L1d, 2 MiB L2 per
// core) the AVX-512 kernel is 14×32 with kc = 384 (a 21 KiB A panel) and nc = 768 (a
// 1.1 MiB B block): at 1024×768×3072, kc = 256 or 512 measured 2-5% slower, nc = 384 some
// 9% slower, nc = 1536 the same. The AVX2 kernel, 6×16, runs kc = 256 (kc = 384 measured
// the same). Edge tiles are computed whole from zero-padded panels into a small tile and
// merged into C.
//
// Products of one row or one column (a decoded token) are matrix-vector products, bound by
// memory: they stream the matrix once, without packing.
//
// Sgemm runs on its caller's goroutine; callers split large products into slabs of C. Its
// buffers come from a sync.Pool, so it allocates nothing in steady state.
package sgemm

import (
	"fmt"
	"sync"
	"unsafe"
)

// microKernel is one implementation of the innermost loops, with the blocking that suits it.
type microKernel struct {
	name       string
	mr, nr, kc int // tile of C and depth of the packed panels
	nc         int // columns of the packed B block
	// gemm sets the mr×nr tile at c (row stride ldc) to alpha·A·B + beta·tile, for A the
	// packed mr×k panel at a (mr floats per step of k) and B the packed k×nr panel at b (nr
	// floats per step); when beta is ±0 the tile is only written. k > 0.
	gemm func(k int, a, b, c *float32, ldc int, alpha, beta float32)
	// axpy4 adds to y[0:n] the rows x[0]·m[0:n] + … + x[3]·m[3·ldm:3·ldm+n]; n is a multiple of 16.
	axpy4 func(n int, x, m *float32, ldm int, y *float32)
	// dot4 sets y[r] = Σ_{p<k} x[p]·m[r·ldm+p] for r < 4; k is a multiple of 8.
	dot4 func(k int, x, m *float32, ldm int, y *float32)
	// dot4q8 is dot4 for m in int8; k is a multiple of 16.
	dot4q8 func(k int, x *float32, m *int8, ldm int, y *float32)
}

// kernels lists the microkernels this machine can run, fastest first; active is the one in
// use (tests switch it).
var (
	kernels = available()
	active  = kernels[0]
)

// Kernel names the microkernel in use: "avx512", "avx2", "neon" or "go".
func Kernel() string { return active.name }

// workspace holds one call's packed panels.
type workspace struct {
	a, b, tile, x, y []float32
}

var pool = sync.Pool{New: func() any { return new(workspace) }}

// grow returns s resized to n floats starting on a 64-byte boundary, reusing its memory
// when it is large enough.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		s = make([]float32, n+16)
		s = s[(64-uintptr(unsafe.Pointer(&s[0]))%64)%64/4:]
	}
	return s[:n]
}

// Sgemm computes row-major C = alpha·op(A)·op(B) + beta·C, op transposing its operand when
// the flag is set; op(A) is m×k, op(B) is k×n, C is m×n; lda, ldb, ldc are row strides
// (elements) of the matrices as stored (A stored k×m when transA). beta == 0 means C is only
// written, never read (NaNs in C are overwritten); alpha == 0 or k == 0 means A and B are not
// read. The slices need only hold the elements the definition reads or writes: the last row
// of a matrix may be shorter than its stride.
//
// Sgemm runs on the calling goroutine; callers split large products into slabs of C.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("sgemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	checkMatrix("A", rowsA, colsA, len(a), lda)
	checkMatrix("B", rowsB, colsB, len(b), ldb)
	checkMatrix("C", m, n, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scale(m, n, beta, c, ldc)
		return
	}
	w := pool.Get().(*workspace)
	defer pool.Put(w)
	ker := active
	switch {
	case m == 1 && transA: // x = the column of A, stored with stride lda
		gemv(ker, w, !transB, n, k, alpha, gather(w, a, k, lda), b, ldb, beta, c, 1)
	case m == 1:
		gemv(ker, w, !transB, n, k, alpha, a[:k], b, ldb, beta, c, 1)
	case n == 1 && !transB: // x = the column of B, stored with stride ldb
		gemv(ker, w, transA, m, k, alpha, gather(w, b, k, ldb), a, lda, beta, c, ldc)
	case n == 1:
		gemv(ker, w, transA, m, k, alpha, b[:k], a, lda, beta, c, ldc)
	default:
		gemm(ker, w, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// checkMatrix panics unless a rows×cols matrix with row stride ld fits in size elements.
func checkMatrix(name string, rows, cols, size, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("sgemm: ld%s = %d for %d columns", name, ld, cols))
	}
	if rows > 0 && cols > 0 && size < (rows-1)*ld+cols {
		panic(fmt.Sprintf("sgemm: %s has %d elements, %d×%d with stride %d needs %d", name, size, rows, cols, ld, (rows-1)*ld+cols))
	}
}

// scale sets C = beta·C.
func scale(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// gemm is the blocked product of the package comment.
func gemm(ker *microKernel, w *workspace, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mr, nr := ker.mr, ker.nr
	nc := min(ker.nc, (n+nr-1)/nr*nr)
	kc := min(ker.kc, k)
	w.a = grow(w.a, mr*kc)
	w.b = grow(w.b, kc*nc)
	w.tile = grow(w.tile, mr*nr)
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			betaBlock := beta
			if pc > 0 {
				betaBlock = 1
			}
			packB(nr, transB, kb, nb, b, ldb, pc, jc, w.b)
			for ir := 0; ir < m; ir += mr {
				rows := min(mr, m-ir)
				packA(mr, transA, rows, kb, a, lda, ir, pc, w.a)
				for jr := 0; jr < nb; jr += nr {
					cols := min(nr, nb-jr)
					ci := ir*ldc + jc + jr
					bp := &w.b[jr*kb]
					if rows == mr && cols == nr {
						ker.gemm(kb, &w.a[0], bp, &c[ci], ldc, alpha, betaBlock)
					} else {
						ker.gemm(kb, &w.a[0], bp, &w.tile[0], nr, 1, 0)
						merge(rows, cols, alpha, betaBlock, w.tile, nr, c[ci:], ldc)
					}
				}
			}
		}
	}
}

// packA copies op(A)[i0:i0+rows, p0:p0+kb] into dst as mr floats per step of k, the rows
// past rows zero.
func packA(mr int, trans bool, rows, kb int, a []float32, lda, i0, p0 int, dst []float32) {
	dst = dst[:mr*kb]
	if rows < mr {
		clear(dst)
	}
	if trans { // A stored k×m: the step's rows are contiguous
		for p := range kb {
			copy(dst[p*mr:p*mr+rows], a[(p0+p)*lda+i0:])
		}
		return
	}
	transpose(rows, kb, a[i0*lda+p0:], lda, dst, mr)
}

// packB copies op(B)[p0:p0+kb, j0:j0+nb] into dst as panels of nr columns, each kb steps of
// nr floats, the columns past nb zero.
func packB(nr int, trans bool, kb, nb int, b []float32, ldb, p0, j0 int, dst []float32) {
	for jr := 0; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		panel := dst[jr*kb : jr*kb+nr*kb]
		if cols < nr {
			clear(panel)
		}
		if trans { // B stored n×k: column j of op(B) is row j of B
			transpose(cols, kb, b[(j0+jr)*ldb+p0:], ldb, panel, nr)
			continue
		}
		for p := range kb {
			copy(panel[p*nr:p*nr+cols], b[(p0+p)*ldb+j0+jr:])
		}
	}
}

// transpose sets dst[p·ldd+i] = src[i·lds+p] for i < rows, p < cols, four rows at a time.
func transpose(rows, cols int, src []float32, lds int, dst []float32, ldd int) {
	i := 0
	for ; i+4 <= rows; i += 4 {
		s0, s1 := src[i*lds:][:cols], src[(i+1)*lds:][:cols]
		s2, s3 := src[(i+2)*lds:][:cols], src[(i+3)*lds:][:cols]
		for p := range s0 {
			d := dst[p*ldd+i:][:4]
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
		}
	}
	for ; i < rows; i++ {
		for p, v := range src[i*lds:][:cols] {
			dst[p*ldd+i] = v
		}
	}
}

// merge sets the rows×cols corner of C to alpha·tile + beta·C.
func merge(rows, cols int, alpha, beta float32, tile []float32, ldt int, c []float32, ldc int) {
	for i := range rows {
		t := tile[i*ldt : i*ldt+cols]
		row := c[i*ldc : i*ldc+cols]
		if beta == 0 {
			for j, v := range t {
				row[j] = alpha * v
			}
			continue
		}
		for j, v := range t {
			row[j] = alpha*v + beta*row[j]
		}
	}
}

// gather copies the k elements x[0], x[inc], … into the workspace.
func gather(w *workspace, x []float32, k, inc int) []float32 {
	w.x = grow(w.x, k)
	for p := range w.x {
		w.x[p] = x[p*inc]
	}
	return w.x
}

// gemv computes the matrix-vector product y = alpha·op(M)·x + beta·y, y having n elements
// at stride incy and x k elements, for M stored k×n when rowsForm (y = Σ_p x[p]·M[p,:]) and
// n×k otherwise (y[j] = M[j,:]·x).
func gemv(ker *microKernel, w *workspace, rowsForm bool, n, k int, alpha float32, x, mat []float32, ldm int, beta float32, y []float32, incy int) {
	w.y = grow(w.y, n)
	t := w.y
	if rowsForm {
		clear(t)
		// Blocks of columns keep the sums in L1 while four rows at a time stream through.
		const block = 2048
		for j0 := 0; j0 < n; j0 += block {
			nb := min(block, n-j0)
			nv := nb &^ 15
			p := 0
			for ; p+4 <= k; p += 4 {
				if nv > 0 {
					ker.axpy4(nv, &x[p], &mat[p*ldm+j0], ldm, &t[j0])
				}
				axpy4Go(nb-nv, x[p:p+4], mat[p*ldm+j0+nv:], ldm, t[j0+nv:j0+nb])
			}
			for ; p < k; p++ {
				row := mat[p*ldm+j0 : p*ldm+j0+nb]
				for j, v := range row {
					t[j0+j] += x[p] * v
				}
			}
		}
	} else {
		kv := k &^ 7
		j := 0
		for ; j+4 <= n; j += 4 {
			if kv > 0 {
				ker.dot4(kv, &x[0], &mat[j*ldm], ldm, &t[j])
			} else {
				clear(t[j : j+4])
			}
			for r := range 4 {
				t[j+r] += dot(x[kv:k], mat[(j+r)*ldm+kv:])
			}
		}
		for ; j < n; j++ {
			t[j] = dot(x[:k], mat[j*ldm:])
		}
	}
	for j, v := range t {
		if beta == 0 {
			y[j*incy] = alpha * v
		} else {
			y[j*incy] = alpha*v + beta*y[j*incy]
		}
	}
}

// dot returns Σ x[p]·m[p] over the elements of x.
func dot(x, m []float32) float32 {
	m = m[:len(x)]
	var s float32
	for p, v := range x {
		s += v * m[p]
	}
	return s
}
