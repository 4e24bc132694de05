package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gochat/dist"
)

// launchGrace is how long the launcher lets the other ranks end after one failed, before
// it kills them.
const launchGrace = 10 * time.Second

// launchRanks runs this very command as n processes on this machine, as torchrun does:
// each gets its rank (dist.RankEnv, dist.WorldEnv), one GPU of those visible
// (CUDA_VISIBLE_DEVICES), and the address where rank 0 receives the others to form their
// NCCL group (NCCL_COMM_ID, a free port on loopback). A Ctrl-C reaches every rank once,
// through the launcher; a rank that fails ends the others.
func launchRanks(n int) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--%s: finding this program: %w", nprocFlag.Name, err)
	}
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("--%s: %w", nprocFlag.Name, err)
	}
	devices, err := rankDevices(os.Getenv("CUDA_VISIBLE_DEVICES"), n)
	if err != nil {
		return err
	}
	cmds := make([]*exec.Cmd, n)
	for rank := range cmds {
		cmd := exec.Command(self, os.Args[1:]...)
		cmd.Env = append(os.Environ(), dist.RankEnv+"="+strconv.Itoa(rank), dist.WorldEnv+"="+strconv.Itoa(n),
			"NCCL_COMM_ID=127.0.0.1:"+strconv.Itoa(port), "CUDA_VISIBLE_DEVICES="+devices[rank])
		cmds[rank] = cmd
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	return supervise(cmds, signals, launchGrace)
}

// rankDevices gives each of n ranks one of the GPUs visible (a CUDA_VISIBLE_DEVICES list,
// or all of the machine's when empty).
func rankDevices(visible string, n int) ([]string, error) {
	var devices []string
	if visible = strings.TrimSpace(visible); visible != "" {
		devices = strings.Split(visible, ",")
		if len(devices) < n {
			return nil, fmt.Errorf("--%s %d: CUDA_VISIBLE_DEVICES=%s names %d GPUs, one per rank is needed", nprocFlag.Name, n, visible, len(devices))
		}
		return devices[:n], nil
	}
	for i := range n {
		devices = append(devices, strconv.Itoa(i))
	}
	return devices, nil
}

// freePort is a TCP port on loopback that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on loopback: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// supervise runs the ranks' commands to their end. Each rank runs in a process group of
// its own, so that a Ctrl-C at the terminal reaches it once, as the launcher forwards each
// signal from signals. When a rank fails, the launcher says so, asks the others to stop
// (SIGTERM: they save nothing, their collectives cannot finish) and kills those still
// running after grace. It returns the first rank's failure, or nil when every rank ended
// well.
func supervise(cmds []*exec.Cmd, signals <-chan os.Signal, grace time.Duration) error {
	type exit struct {
		rank int
		err  error
	}
	exits := make(chan exit, len(cmds))
	running := map[int]*exec.Cmd{}
	for rank, cmd := range cmds {
		if cmd.Stdout == nil {
			cmd.Stdout = os.Stdout
		}
		if cmd.Stderr == nil {
			cmd.Stderr = os.Stderr
		}
		ownProcessGroup(cmd)
		if err := cmd.Start(); err != nil {
			for _, c := range running {
				c.Process.Kill()
				c.Wait()
			}
			return fmt.Errorf("starting rank %d: %w", rank, err)
		}
		running[rank] = cmd
		go func() { exits <- exit{rank, cmd.Wait()} }()
	}
	var failed error
	var kill <-chan time.Time
	for len(running) > 0 {
		select {
		case sig := <-signals:
			for _, c := range running {
				c.Process.Signal(sig)
			}
		case e := <-exits:
			delete(running, e.rank)
			if e.err == nil || failed != nil {
				continue
			}
			failed = fmt.Errorf("rank %d of %d: %v", e.rank, len(cmds), e.err)
			if len(running) > 0 {
				fmt.Fprintf(os.Stderr, "gochat: rank %d of %d ended (%v); ending the other ranks\n", e.rank, len(cmds), e.err)
				for _, c := range running {
					c.Process.Signal(syscall.SIGTERM)
				}
				kill = time.After(grace)
			}
		case <-kill:
			for _, c := range running {
				c.Process.Kill()
			}
		}
	}
	return failed
}
