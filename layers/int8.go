package layers

import (
	"slices"
	"sync"

	"gochat/internal/parallel"
	"gochat/internal/sgemm"
)

// MulQ8T implements backend.Int8Kernels on the processors, split by rows of q: it reads
// the int8 rows directly when x has few rows (a decoded token, bound by memory) and goes
// through float32 blocks of q8Block rows multiplied by h's Gemm when it has many (a prompt,
// bound by arithmetic).
func (h HostOps[T]) MulQ8T(n int, x []float32, q []int8, scale []float32, y []float32) {
	rows := len(scale)
	cols := len(q) / rows
	m := sgemm.Q8{Rows: rows, Cols: cols, Q: q, Scale: scale}
	if n < Q8Rows {
		chunks := (rows + q8Chunk - 1) / q8Chunk
		parallel.Each(chunks, parallel.Workers(), func(c, _ int) {
			sgemm.MulQ8T(n, x, m, y, rows, c*q8Chunk, min(rows, (c+1)*q8Chunk))
		})
		return
	}
	// The block's product goes to a scratch of its own, then into y's columns: an engine
	// that moves products to a device copies contiguous operands, not y's whole stride.
	block, part := q8Blocks.Get().(*[]float32), q8Blocks.Get().(*[]float32)
	defer q8Blocks.Put(block)
	defer q8Blocks.Put(part)
	*block = slices.Grow((*block)[:0], q8Block*cols)[:q8Block*cols]
	*part = slices.Grow((*part)[:0], n*q8Block)[:n*q8Block]
	for j0 := 0; j0 < rows; j0 += q8Block {
		r := min(q8Block, rows-j0)
		b, p := (*block)[:r*cols], (*part)[:n*r]
		parallel.For(r, cols, func(lo, hi int) { m.DequantizeRows(b[lo*cols:hi*cols], j0+lo, j0+hi) })
		h.Sgemm(false, true, n, r, cols, 1, x, cols, b, cols, 0, p, r)
		for i := range n {
			copy(y[i*rows+j0:i*rows+j0+r], p[i*r:(i+1)*r])
		}
	}
}

// Q8Rows is the rows of x from which an int8 product is better done as float32 products of
// its dequantized weights (q8Block rows of them at a time here, kept in q8Blocks) than by
// reading the int8 weights once for every row.
const Q8Rows, q8Block = 16, 256

// q8Chunk is the rows of int8 weights a processor takes at a time in a product of few rows
// of x, handed out as they finish.
const q8Chunk = 128

var q8Blocks = sync.Pool{New: func() any { return new([]float32) }}
