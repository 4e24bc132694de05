//go:build hostdevice

package main

import (
	"gochat/backend"
	"gochat/cpubackend"
	"gochat/internal/hostdevice"
)

// A binary built with -tags hostdevice computes by default on internal/hostdevice: the
// CPU's kernels behind a device's memory, which the host can reach only through the
// engine's copies (a stray read faults). Its tests check that every command keeps to that
// discipline, as a GPU's memory demands, on a machine without a GPU.
func init() {
	backend.Register("hostdevice", func(host backend.Backend) (backend.Backend, error) {
		return hostdevice.New(host.(*cpubackend.Engine).BLAS), nil
	})
	engineFlag.Value = "hostdevice"
}
