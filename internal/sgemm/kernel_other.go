//go:build !amd64 && !arm64

package sgemm

// available: other architectures run the portable kernel.
func available() []*microKernel { return []*microKernel{&goKernel} }
