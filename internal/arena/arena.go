// Package arena hands out pieces of the large allocations an accelerator engine makes (CUDA
// managed memory, Metal shared buffers) and says which allocation, and where in it, a slice
// lies: the engines check that a kernel's operands are their memory, and Metal names a
// matrix by its buffer and an offset. Pieces are never given back; they live as long as the
// engine.
package arena

import (
	"fmt"
	"unsafe"

	"gorgonia.org/tensor"
)

// Chunk is one allocation.
type Chunk struct {
	Base   unsafe.Pointer
	Size   uintptr
	Handle uintptr // the allocator's object for the chunk (a MTLBuffer), if it has one
	used   uintptr
}

// Arena carves chunks of at least MinChunk bytes, made by New, into pieces aligned to Align
// bytes (a power of two).
type Arena struct {
	MinChunk, Align uintptr
	New             func(size uintptr) (Chunk, error)
	chunks          []Chunk
	total           uintptr
}

// Alloc returns size bytes from the first chunk with room, or from a new chunk.
func (a *Arena) Alloc(size uintptr) (unsafe.Pointer, error) {
	size = (size + a.Align - 1) &^ (a.Align - 1)
	for i := range a.chunks {
		if c := &a.chunks[i]; c.Size-c.used >= size {
			p := unsafe.Add(c.Base, c.used)
			c.used += size
			return p, nil
		}
	}
	c, err := a.New(max(size, a.MinChunk))
	if err != nil {
		return nil, err
	}
	if c.Size < size || uintptr(c.Base)&(a.Align-1) != 0 {
		return nil, fmt.Errorf("arena: a chunk of %d bytes at %p does not hold %d aligned bytes", c.Size, c.Base, size)
	}
	c.used = size
	a.chunks = append(a.chunks, c)
	a.total += c.Size
	return c.Base, nil
}

// Total is the bytes of all chunks taken.
func (a *Arena) Total() uintptr { return a.total }

// Find returns the chunk holding the n bytes from p and p's offset in it, or false when they
// are not all in one chunk.
func (a *Arena) Find(p unsafe.Pointer, n uintptr) (Chunk, uintptr, bool) {
	for _, c := range a.chunks {
		if base := uintptr(c.Base); uintptr(p) >= base && uintptr(p)+n <= base+c.Size {
			return c, uintptr(p) - base, true
		}
	}
	return Chunk{}, 0, false
}

// Holds reports whether x lies in the arena (an empty x does).
func Holds[T any](a *Arena, x []T) bool {
	if len(x) == 0 {
		return true
	}
	_, _, ok := a.Find(unsafe.Pointer(&x[0]), uintptr(len(x))*unsafe.Sizeof(x[0]))
	return ok
}

// Typed returns the n elements at p as the slice backend.Memory's Make returns for dt:
// []float32 for tensor.Float32, []int for tensor.Int, []int8 for tensor.Int8. It panics on another type, which no
// caller asks for.
func Typed(p unsafe.Pointer, dt tensor.Dtype, n int) any {
	switch dt {
	case tensor.Float32:
		return unsafe.Slice((*float32)(p), n)
	case tensor.Int:
		return unsafe.Slice((*int)(p), n)
	case tensor.Int8:
		return unsafe.Slice((*int8)(p), n)
	}
	panic(fmt.Sprintf("arena: no slices of %v", dt))
}

// Pair returns where dst and src lie and their bytes, for a copy between them: slices
// Typed makes, of one type and length (an empty pair has nil addresses).
func Pair(dst, src any) (d, s unsafe.Pointer, n uintptr, err error) {
	d, dn, dok := Span(dst)
	s, sn, sok := Span(src)
	if !dok || !sok || fmt.Sprintf("%T", dst) != fmt.Sprintf("%T", src) || dn != sn {
		return nil, nil, 0, fmt.Errorf("arena: a copy from %T of %d bytes into %T of %d", src, sn, dst, dn)
	}
	return d, s, dn, nil
}

// Span is where x, a []float32, []int or []int8, lies and its bytes; ok is false for
// another type.
func Span(x any) (p unsafe.Pointer, n uintptr, ok bool) {
	switch x := x.(type) {
	case []float32:
		return unsafe.Pointer(unsafe.SliceData(x)), uintptr(len(x)) * 4, true
	case []int:
		return unsafe.Pointer(unsafe.SliceData(x)), uintptr(len(x)) * unsafe.Sizeof(0), true
	case []int8:
		return unsafe.Pointer(unsafe.SliceData(x)), uintptr(len(x)), true
	}
	return nil, 0, false
}
