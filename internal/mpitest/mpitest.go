// Package mpitest starts programs under Open MPI's mpirun for tests: a test binary that
// runs one of its own tests on every rank, or the gochat binary.
package mpitest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Command is mpirun starting np copies of program with args. The test is skipped when
// mpirun is not installed, unless GOCHAT_REQUIRE_MPI is set (CI sets it), when it fails.
// The ranks share this machine's cores (--oversubscribe); as root, mpirun is told that it
// may run as root.
func Command(t testing.TB, ctx context.Context, np int, program string, args ...string) *exec.Cmd {
	t.Helper()
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("GOCHAT_REQUIRE_MPI") != "" {
			t.Fatalf("mpirun is not installed (apt-get install openmpi-bin): %v", err)
		}
		t.Skip("mpirun is not installed (apt-get install openmpi-bin)")
	}
	full := append([]string{"-np", strconv.Itoa(np), "--oversubscribe", program}, args...)
	cmd := exec.CommandContext(ctx, mpirun, full...)
	cmd.Env = os.Environ()
	if os.Geteuid() == 0 {
		cmd.Env = append(cmd.Env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// Self is Command running the calling test binary's test named test on every rank, with
// env added to the ranks' environment (the variable that tells the test it is a rank).
func Self(t testing.TB, ctx context.Context, np int, test string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := Command(t, ctx, np, os.Args[0], "-test.run", "^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(cmd.Env, env...) // mpirun passes its environment to the ranks it starts here
	return cmd
}
