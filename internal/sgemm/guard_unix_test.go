//go:build unix

package sgemm

import (
	"syscall"
	"unsafe"
)

// guardedBuffer maps n floats that end where an inaccessible page begins, so that reading or
// writing past the end of a slice taken from its tail faults.
func guardedBuffer(n int) []float32 {
	page := syscall.Getpagesize()
	size := (4*n + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, size+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	if err := syscall.Mprotect(mem[size:], syscall.PROT_NONE); err != nil {
		panic(err)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&mem[size-4*n])), n)
}
