// Package metalbackend runs gochat's large matrix products on an Apple GPU through Metal
// Performance Shaders, loaded at run time with purego and its objc package (no cgo).
//
// Like cudabackend it is a cpubackend.BLAS: the CPU engine built on it sends float32
// products from MinFLOPs on to MPSMatrixMultiplication and keeps the rest on Accelerate.
// Apple GPUs share memory with the CPU; this first version still copies each operand into
// a shared Metal buffer (a memcpy, no bus transfer), and later ones are to allocate the
// tensors themselves in such buffers. The Metal calls build only on darwin/arm64; the
// planning of a product (operands, strides, transposes, thresholds, staging sizes) is plain
// Go and is tested everywhere. README.md says how to verify it on a Mac.
package metalbackend
