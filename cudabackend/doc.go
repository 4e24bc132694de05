// Package cudabackend runs gochat on an NVIDIA GPU, through libraries loaded at run time
// with purego (no cgo): libcudart, libcublas and libnvrtc (version 13, then 12) and the
// driver's libcuda.
//
// Its Engine, a backend.Backend registered as "cuda", "cuda-tf32" and "cuda-bf16", trains
// on the GPU: the model's tensors, gradients and optimizer state are CUDA managed memory
// (its Make),
// products run through cuBLAS on them where they lie, and every other op of layers and
// optimizers runs as a kernel of kernels.cu, which NVRTC compiles when the engine starts.
// The host still reads and writes the same tensors (loading weights, the loss, checkpoints)
// after a Sync. Every CUDA call goes through one OS thread (worker), queued in order.
//
// Products of host memory (generation keeps its activations in Go memory) go through BLAS,
// which copies each large float32 product to the GPU and back; products below
// DefaultMinFLOPs stay on the host engine the registry opened it over, where the copies
// would cost more than the arithmetic. The package imports no other engine.
//
// The package builds on Linux only; elsewhere it is empty.
package cudabackend
