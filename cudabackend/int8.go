//go:build linux

package cudabackend

import "gochat/layers"

// q8Block is the rows of int8 weights a product of many rows dequantizes at a time: the
// scratch it takes stays a few MiB whatever the vocabulary (lm_head's rows).
const q8Block = 4096

// MulQ8T implements backend.Int8Kernels. For few rows of x (a decoded token) a kernel reads
// each int8 row of the weights once for all of them, a warp a row; for more (a prompt)
// the weights are dequantized into float32 a block of rows at a time and multiplied by
// cuBLAS in the engine's precision, straight into y's columns.
func (e *Engine) MulQ8T(n int, x []float32, q []int8, scale []float32, y []float32) {
	rows := len(scale)
	if n == 0 || rows == 0 {
		return
	}
	cols := len(q) / rows
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	if n < layers.Q8Rows {
		e.launch("mulQ8T", warpBlocks(rows), rowThreads, x[:n*cols], q, scale, y[:n*rows], n, rows, cols)
		return
	}
	block := min(rows, q8Block)
	w := e.reserve(scratchQ8, uint64(f32*block*cols))
	dx, dy := e.ptr(x[:n*cols]), e.ptr(y[:n*rows])
	for j0 := 0; j0 < rows; j0 += block {
		r := min(block, rows-j0)
		e.elementwise("dequantizeQ8", r*cols, w, q, scale, j0, r, cols)
		e.gemm(false, true, n, r, cols, 1, dx, cols, w, cols, 0, dy+uintptr(f32*j0), rows)
	}
}
