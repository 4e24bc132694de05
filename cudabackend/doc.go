// Package cudabackend runs gochat on an NVIDIA GPU, through libraries loaded at run time
// with purego (no cgo): libcudart, libcublas and libnvrtc (version 13, then 12) and the
// driver's libcuda.
//
// Its Engine (BLAS.Engine, chosen by cpubackend.NewEngine) trains on the GPU: the model's
// tensors, gradients and optimizer state are CUDA managed memory (layers.Device's Make),
// products run through cuBLAS on them where they lie, and every other op of layers and
// optimizers runs as a kernel of kernels.cu, which NVRTC compiles when the engine starts.
// The host still reads and writes the same tensors (loading weights, the loss, checkpoints)
// after a Sync. Every CUDA call goes through one OS thread (worker), queued in order.
//
// BLAS itself is a cpubackend.BLAS for host memory: the CPU engine built on it (generation
// keeps its activations in Go memory) copies each large float32 product to the GPU and back;
// products below DefaultMinFLOPs stay on the CPU BLAS, where the copies would cost more than
// the arithmetic.
//
// The package builds on Linux only; elsewhere it is empty.
package cudabackend
