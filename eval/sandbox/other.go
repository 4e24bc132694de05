//go:build !unix

package sandbox

import (
	"context"
	"fmt"
	"runtime"
)

// Run is not available outside Unix: the sandbox needs process groups and resource limits.
func Run(context.Context, string, Config) (Result, error) {
	return Result{}, fmt.Errorf("sandbox: running programs is not supported on %s", runtime.GOOS)
}
