// Package metalbackend runs gochat's large matrix products on an Apple GPU through Metal
// Performance Shaders, loaded at run time with purego and its objc package (no cgo).
//
// Its Engine, a backend.Backend registered as "metal", keeps the tensors in shared Metal
// buffers (backend.Memory): the CPU's kernels (layers.HostOps, optimizers.HostSteps) use
// them in place, as Apple GPUs share
// memory with the CPU, and float32 products from MinFLOPs on run as MPSMatrixMultiplication
// on the same buffers, without copies. BLAS itself serves host memory: it copies each
// operand into a shared staging buffer (a memcpy, no bus transfer). The Metal calls build
// only on darwin/arm64; the planning of a product (operands, strides, transposes,
// thresholds, staging sizes, placement in the engine's buffers) is plain Go and is tested
// everywhere. README.md says how to verify it on a Mac.
package metalbackend
