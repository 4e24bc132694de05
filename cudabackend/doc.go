// Package cudabackend runs gochat's large matrix products on an NVIDIA GPU through cuBLAS,
// loaded at run time with purego (no cgo): libcudart and libcublas, version 13 then 12.
//
// It is a cpubackend.BLAS, so the CPU engine built on it sends every large float32 product
// to the GPU (the custom ops' products, Gorgonia's own, Newton-Schulz) and keeps the rest of
// the work on the processors. The operands live in host memory and cross to the device for
// each product; products below DefaultMinFLOPs stay on the CPU BLAS, where the copies would cost
// more than the arithmetic.
//
// The package builds on Linux only; elsewhere it is empty.
package cudabackend
