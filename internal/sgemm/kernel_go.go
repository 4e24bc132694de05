package sgemm

import "unsafe"

// goKernel is the portable microkernel: a 4×4 tile in sixteen scalar sums.
var goKernel = microKernel{
	name: "go", mr: 4, nr: 4, kc: 256, nc: 512,
	gemm: gemmGo,
	axpy4: func(n int, x, m *float32, ldm int, y *float32) {
		axpy4Go(n, unsafe.Slice(x, 4), unsafe.Slice(m, 3*ldm+n), ldm, unsafe.Slice(y, n))
	},
	dot4: func(k int, x, m *float32, ldm int, y *float32) {
		mat, ys := unsafe.Slice(m, 3*ldm+k), unsafe.Slice(y, 4)
		xs := unsafe.Slice(x, k)
		for r := range ys {
			ys[r] = dot(xs, mat[r*ldm:])
		}
	},
	dot4q8: dot4q8Go,
}

// dot4q8Go is microKernel.dot4q8 in Go.
func dot4q8Go(k int, x *float32, m *int8, ldm int, y *float32) {
	mat, ys := unsafe.Slice(m, 3*ldm+k), unsafe.Slice(y, 4)
	ys[0], ys[1], ys[2], ys[3] = dotQ8(unsafe.Slice(x, k), mat), dotQ8(unsafe.Slice(x, k), mat[ldm:]),
		dotQ8(unsafe.Slice(x, k), mat[2*ldm:]), dotQ8(unsafe.Slice(x, k), mat[3*ldm:])
}

// gemmGo is microKernel.gemm for a 4×4 tile.
func gemmGo(k int, a, b, c *float32, ldc int, alpha, beta float32) {
	as, bs := unsafe.Slice(a, 4*k), unsafe.Slice(b, 4*k)
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := 0; p+4 <= len(as); p += 4 {
		ap, bp := as[p:p+4:p+4], bs[p:p+4:p+4]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	sums := [16]float32{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
	cs := unsafe.Slice(c, 3*ldc+4)
	for i := range 4 {
		merge(1, 4, alpha, beta, sums[4*i:], 4, cs[i*ldc:], ldc)
	}
}

// axpy4Go adds x[0]·m[0:n] + … + x[3]·m[3·ldm:3·ldm+n] to y[0:n].
func axpy4Go(n int, x, m []float32, ldm int, y []float32) {
	if n == 0 {
		return
	}
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	m0, m1, m2, m3 := m[:n], m[ldm:ldm+n], m[2*ldm:2*ldm+n], m[3*ldm:3*ldm+n]
	y = y[:n]
	for j := range y {
		y[j] += x0*m0[j] + x1*m1[j] + x2*m2[j] + x3*m3[j]
	}
}
