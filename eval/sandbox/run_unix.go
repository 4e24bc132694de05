//go:build unix

package sandbox

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed prelude.py
var prelude string

// drainGrace is how long the output is still read after the process group is killed: a
// process that escaped the group may hold the pipes open, and is not waited for.
const drainGrace = time.Second

// started, when set (by the tests), is told the process ID of each interpreter started.
var started func(pid int)

// Run runs program and returns its verdict. The error is not the program's: it says that
// the program could not be run (no interpreter, no temporary directory, the interpreter
// failing before the program started, ctx done), and then the Result is empty; or that the
// temporary directory could not be removed, with the Result of the run.
func Run(ctx context.Context, program string, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	python, err := exec.LookPath(cfg.Python)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrNoPython, err)
	}
	dir, err := os.MkdirTemp("", "gochat-sandbox-")
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: the program's directory: %w", err)
	}
	res, err := runIn(ctx, python, dir, program, cfg)
	if rmErr := removeAll(dir); rmErr != nil && err == nil {
		err = fmt.Errorf("sandbox: removing the program's directory: %w", rmErr)
	}
	return res, err
}

// runIn runs program from dir, with the namespaces when the platform has them and the
// kernel allows them, else without, saying why.
func runIn(ctx context.Context, python, dir, program string, cfg Config) (Result, error) {
	if err := os.WriteFile(filepath.Join(dir, "program.py"), []byte(program), 0o600); err != nil {
		return Result{}, fmt.Errorf("sandbox: writing the program: %w", err)
	}
	landlock, filter, notes := platformLayers(cfg)
	args, err := preludeArgs(cfg, landlock, filter)
	if err != nil {
		return Result{}, err
	}
	namespaces := namespacesSupported && !cfg.off.namespaces
	if cfg.off.namespaces {
		notes = append(notes, "namespaces off")
	}
	p, err := start(python, dir, args, namespaces)
	if err != nil && namespaces {
		notes = append(notes, fmt.Sprintf("no namespaces: the kernel refused them (%v)", err))
		namespaces = false
		p, err = start(python, dir, args, false)
	}
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: starting %s: %w", python, err)
	}
	res, err := p.wait(ctx, cfg)
	res.Contained.Namespaces = namespaces
	res.Contained.Notes = append(notes, res.Contained.Notes...)
	return res, err
}

// preludeArgs are python3's arguments: the prelude, its configuration and the program.
func preludeArgs(cfg Config, landlock bool, filter []byte) ([]string, error) {
	limits := map[string]int64{
		"RLIMIT_AS":    cfg.Memory,
		"RLIMIT_DATA":  cfg.Memory,
		"RLIMIT_NPROC": int64(cfg.Processes),
		"RLIMIT_FSIZE": cfg.FileSize,
		"RLIMIT_CORE":  0,
		"RLIMIT_CPU":   int64(math.Ceil(cfg.Timeout.Seconds())) + 2,
	}
	if stackLimit {
		limits["RLIMIT_STACK"] = cfg.Memory
	}
	config, err := json.Marshal(struct {
		Limits   map[string]int64 `json:"limits"`
		Landlock bool             `json:"landlock"`
		Seccomp  string           `json:"seccomp"`
	}{limits, landlock, hex.EncodeToString(filter)})
	if err != nil {
		return nil, fmt.Errorf("sandbox: the prelude's configuration: %w", err)
	}
	return []string{"-I", "-B", "-c", prelude, string(config), "program.py"}, nil
}

// process is a started interpreter and the read ends of its stdout, its stderr and the
// prelude's report (its file descriptor 3).
type process struct {
	cmd                    *exec.Cmd
	stdout, stderr, report *os.File
}

// start starts python from dir with a scrubbed environment, stdin from /dev/null, and
// pipes for its output and the prelude's report.
func start(python, dir string, args []string, namespaces bool) (*process, error) {
	var reads, writes [3]*os.File
	closeAll := func(files []*os.File) {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := range reads {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(reads[:])
			closeAll(writes[:])
			return nil, err
		}
		reads[i], writes[i] = r, w
	}
	cmd := exec.Command(python, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8"}
	cmd.Stdout, cmd.Stderr = writes[0], writes[1]
	cmd.ExtraFiles = []*os.File{writes[2]}
	cmd.SysProcAttr = procAttr(namespaces)
	err := cmd.Start()
	closeAll(writes[:])
	if err != nil {
		closeAll(reads[:])
		return nil, err
	}
	if started != nil {
		started(cmd.Process.Pid)
	}
	return &process{cmd: cmd, stdout: reads[0], stderr: reads[1], report: reads[2]}, nil
}

// preludeReport is what the prelude applied: "" for a layer in place, else why not, and
// the limits it could not set.
type preludeReport struct {
	Limits   []string `json:"limits"`
	Landlock string   `json:"landlock"`
	Seccomp  string   `json:"seccomp"`
}

// wait waits for the prelude's report, then for the program's end or its timeout, kills
// the process group, and collects the output.
func (p *process) wait(ctx context.Context, cfg Config) (Result, error) {
	pid := p.cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
	stdout, stderr := &cappedBuffer{max: cfg.Output}, &cappedBuffer{max: cfg.Output}
	var copying sync.WaitGroup
	copying.Go(func() { io.Copy(stdout, p.stdout) })
	copying.Go(func() { io.Copy(stderr, p.stderr) })
	reported := make(chan []byte, 1)
	go func() { // one line: a launcher holding file descriptor 3 open cannot delay it
		b, _ := bufio.NewReader(io.LimitReader(p.report, 1<<16)).ReadBytes('\n')
		reported <- b
	}()
	// finish kills whatever is left of the group and collects the output.
	finish := func() {
		killGroup(pid)
		<-exited
		killGroup(pid)
		drained := make(chan struct{})
		go func() {
			copying.Wait()
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(drainGrace):
		}
		p.stdout.Close()
		p.stderr.Close()
		p.report.Close()
		copying.Wait()
	}

	var raw []byte
	select {
	case raw = <-reported:
	case <-time.After(startupLimit):
		finish()
		return Result{}, fmt.Errorf("sandbox: the interpreter did not start the program within %v", startupLimit)
	case <-ctx.Done():
		finish()
		return Result{}, fmt.Errorf("sandbox: %w", ctx.Err())
	}
	var report preludeReport
	if err := json.Unmarshal(raw, &report); err != nil {
		finish()
		return Result{}, fmt.Errorf("sandbox: the interpreter ended before the program started: %s", lastLine(stderr.buf))
	}

	begin := time.Now()
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	timedOut := false
	select {
	case <-exited:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
		finish()
		return Result{}, fmt.Errorf("sandbox: %w", ctx.Err())
	}
	elapsed := time.Since(begin)
	finish()

	res := Result{
		ExitCode:  p.cmd.ProcessState.ExitCode(),
		Stdout:    string(stdout.buf),
		Stderr:    string(stderr.buf),
		Truncated: stdout.truncated || stderr.truncated,
		Elapsed:   elapsed,
		Contained: Containment{Landlock: report.Landlock == "", Seccomp: report.Seccomp == ""},
	}
	switch {
	case timedOut:
		res.Status = TimedOut
	case res.ExitCode == 0:
		res.Status = Passed
	default:
		res.Status = Failed
	}
	for _, layer := range []struct{ name, why string }{{"landlock", report.Landlock}, {"seccomp", report.Seccomp}} {
		if layer.why != "" && layer.why != "not tried" {
			res.Contained.Notes = append(res.Contained.Notes, "no "+layer.name+": "+layer.why)
		}
	}
	for _, l := range report.Limits {
		res.Contained.Notes = append(res.Contained.Notes, "limit not set: "+l)
	}
	return res, nil
}

// killGroup kills the process group led by pid; a group already gone is no error.
func killGroup(pid int) {
	syscall.Kill(-pid, syscall.SIGKILL)
}

// lastLine is the last non-empty line of output, or a placeholder when there is none.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return last
	}
	return "no output"
}

// removeAll removes the program's directory, first giving back the permissions a program
// may have taken off its own subdirectories.
func removeAll(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
