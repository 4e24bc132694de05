//go:build !(linux || darwin)

package cpubackend

import "errors"

// Native is unavailable on this system.
type Native struct{ Gonum }

// LoadNative reports that no system BLAS can be loaded here.
func LoadNative() (*Native, error) {
	return nil, errors.New("no system BLAS loader for this operating system")
}
