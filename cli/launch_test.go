//go:build linux || darwin

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gochat/dist"
)

// launchTestEnv tells a process of the test binary that it is a rank of TestSupervise, and
// how to behave: ok, fail or signal.
const launchTestEnv = "GOCHAT_LAUNCH_TEST"

// TestLaunchedRank is one rank of TestSupervise. It writes what it was told into the
// folder GOCHAT_LAUNCH_DIR, then: ok ends well; fail ends rank 1 with status 3 at once and
// keeps rank 0 running, deaf to SIGTERM, until it is killed (rank 1 fails once it is); signal waits for a Ctrl-C
// and counts those that arrive in the next half second.
func TestLaunchedRank(t *testing.T) {
	mode, dir := os.Getenv(launchTestEnv), os.Getenv("GOCHAT_LAUNCH_DIR")
	if mode == "" {
		t.Skip("a rank of TestSupervise")
	}
	rank, size, ok, err := dist.Launched()
	if !ok || err != nil {
		t.Fatalf("launched: %v %v", ok, err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name+strconv.Itoa(rank)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	switch mode {
	case "ok":
		write("rank", fmt.Sprintf("%d %d", rank, size))
	case "fail":
		if rank == 1 { // once rank 0 waits, deaf
			for _, err := os.Stat(filepath.Join(dir, "pid0")); err != nil; _, err = os.Stat(filepath.Join(dir, "pid0")) {
				time.Sleep(10 * time.Millisecond)
			}
			os.Exit(3)
		}
		signal.Ignore(syscall.SIGTERM)
		write("pid", strconv.Itoa(os.Getpid()))
		time.Sleep(time.Hour)
	case "signal":
		sig := make(chan os.Signal, 8)
		signal.Notify(sig, os.Interrupt)
		write("ready", "")
		<-sig
		n := 1
		for deadline := time.After(500 * time.Millisecond); ; {
			select {
			case <-sig:
				n++
				continue
			case <-deadline:
			}
			break
		}
		write("count", strconv.Itoa(n))
	}
}

// ranks are n commands running TestLaunchedRank in mode, each told its rank as the
// launcher tells it.
func ranks(t *testing.T, n int, mode, dir string) []*exec.Cmd {
	cmds := make([]*exec.Cmd, n)
	for r := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLaunchedRank$", "-test.count=1")
		cmd.Env = append(os.Environ(), launchTestEnv+"="+mode, "GOCHAT_LAUNCH_DIR="+dir,
			dist.RankEnv+"="+strconv.Itoa(r), dist.WorldEnv+"="+strconv.Itoa(n))
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		cmds[r] = cmd
	}
	return cmds
}

// TestSupervise: the launcher runs every rank to its end; a failed rank ends the job with
// an error naming it, and a rank deaf to SIGTERM is killed after the grace; a Ctrl-C
// reaches each rank exactly once.
func TestSupervise(t *testing.T) {
	if os.Getenv(launchTestEnv) != "" {
		t.Skip("a rank")
	}
	dir := t.TempDir()
	if err := supervise(ranks(t, 3, "ok", dir), nil, time.Second); err != nil {
		t.Fatal(err)
	}
	for r := range 3 {
		if b, err := os.ReadFile(filepath.Join(dir, "rank"+strconv.Itoa(r))); err != nil || string(b) != fmt.Sprintf("%d 3", r) {
			t.Errorf("rank %d was told %q (%v)", r, b, err)
		}
	}

	err := supervise(ranks(t, 2, "fail", dir), nil, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "rank 1 of 2: exit status 3") {
		t.Errorf("a failed rank: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pid0"))
	if pid, _ := strconv.Atoi(string(b)); pid == 0 || syscall.Kill(pid, 0) == nil {
		t.Errorf("rank 0 (pid %q) still runs after the launcher returned", b)
	}

	signals := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- supervise(ranks(t, 2, "signal", dir), signals, time.Second) }()
	for r := 0; r < 2; {
		if _, err := os.Stat(filepath.Join(dir, "ready"+strconv.Itoa(r))); err == nil {
			r++
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
	signals <- os.Interrupt
	if err := <-done; err != nil {
		t.Fatalf("interrupted ranks: %v", err)
	}
	for r := range 2 {
		if b, _ := os.ReadFile(filepath.Join(dir, "count"+strconv.Itoa(r))); string(b) != "1" {
			t.Errorf("rank %d got %q Ctrl-Cs, want 1", r, b)
		}
	}
}

func TestRankDevices(t *testing.T) {
	if got, err := rankDevices("", 3); err != nil || strings.Join(got, ",") != "0,1,2" {
		t.Errorf("no list: %v %v", got, err)
	}
	if got, err := rankDevices("4,5,7", 2); err != nil || strings.Join(got, ",") != "4,5" {
		t.Errorf("4,5,7 for 2 ranks: %v %v", got, err)
	}
	if _, err := rankDevices("3", 2); err == nil || !strings.Contains(err.Error(), "names 1 GPUs") {
		t.Errorf("one GPU for 2 ranks: %v", err)
	}
}
