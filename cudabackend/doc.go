// Package cudabackend runs gochat on an NVIDIA GPU, through libraries loaded at run time
// with purego (no cgo): libcudart, libcublas and libnvrtc (version 13, then 12) and the
// driver's libcuda.
//
// Its Engine, a backend.Backend registered as "cuda", "cuda-tf32" and "cuda-bf16", trains
// on the GPU: the model's tensors, gradients and optimizer state are CUDA managed memory
// (its Make), products run through cuBLAS on them where they lie, causal attention runs
// fused (the flash-attention kernels of attention.cu: no T×T scores in memory), and every
// other op of layers and optimizers runs as a kernel of kernels.cu. NVRTC compiles
// kernels.cu when the engine starts and attention.cu when a model first needs it. The host
// still reads and writes the same tensors (loading weights, the loss, checkpoints) after a
// Sync: before it writes memory the device may still be using, it must Sync first. Every CUDA call goes through one OS thread (worker), queued in order.
//
// Products of host memory (an int8 model's prompts, whose activations stay in Go memory) go
// through BLAS, which copies each large float32 product to the GPU and back; products below
// DefaultMinFLOPs stay on the host engine the registry opened it over, where the copies
// would cost more than the arithmetic. The package imports no other engine.
//
// Its kernels are tested three ways. On a GPU, every kernel against the Go kernel of the
// same name (engine_test.go, GOCHAT_REQUIRE_CUDA=1 to fail rather than skip). Without one,
// TestKernelsCompile compiles kernels.cu and each attention.cu build to PTX with clang, and
// the TestEmulated tests run them on the CPU (testdata/emulate.h, with CUDA_EMULATION
// defined: a block's threads as OS threads, barriers for __syncthreads and the warps'
// shuffles and matrix products, guard bytes past every buffer and a block's shared memory)
// against the Go kernels: a kernel's logic, its fragments' layouts and its shared-memory
// size are checked before a GPU's time is spent on it; its speed is not.
//
// The package builds on Linux only; elsewhere it is empty.
package cudabackend
