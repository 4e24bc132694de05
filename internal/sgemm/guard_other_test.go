//go:build !unix

package sgemm

// guardedBuffer returns n floats; without mmap, reads past their end go undetected.
func guardedBuffer(n int) []float32 { return make([]float32, n) }
