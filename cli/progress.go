package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// progressBar returns a progress callback that draws on stderr a bar, the share done, the
// counts in units of per (1 for items, 1e6 for MB), the rate and the ETA. On a terminal it
// redraws one line, at most ten times a second; elsewhere (a log file) it writes a line
// every 30 seconds. The last call (done == total) is always drawn.
func progressBar(unit string, per float64, start time.Time) func(done, total int) {
	tty := isTerminal(os.Stderr)
	every, end := 100*time.Millisecond, "\r"
	if !tty {
		every, end = 30*time.Second, "\n"
	}
	var last time.Time
	return func(done, total int) {
		if time.Since(last) < every && done != total {
			return
		}
		last = time.Now()
		frac := min(float64(done)/float64(max(total, 1)), 1)
		elapsed := time.Since(start).Seconds()
		rate := float64(done) / max(elapsed, 1e-9)
		eta := "?"
		if done > 0 && total > 0 {
			eta = (time.Duration(float64(total-done)/rate) * time.Second).String()
		}
		digits := 0
		if per > 1 {
			digits = 1
		}
		bar := strings.Repeat("█", int(frac*30)) + strings.Repeat("░", 30-int(frac*30))
		fmt.Fprintf(os.Stderr, "%s%s %3.0f%% %.*f/%.*f %s, %.1f %s/s, ETA %s ", end, bar, 100*frac,
			digits, float64(done)/per, digits, float64(total)/per, unit, rate/per, unit, eta)
	}
}

// isTerminal says whether f is a terminal (a character device), where a bar can redraw.
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// stepLog prints a run's log lines on stdout and, when stderr is a terminal, keeps a
// progress bar of the steps below them.
type stepLog struct {
	tty         bool
	bar         func(done, total int)
	done, total int
}

func newStepLog() *stepLog {
	return &stepLog{tty: isTerminal(os.Stderr), bar: progressBar("steps", 1, time.Now())}
}

// Write prints log lines, clearing the bar first and drawing it again after.
func (l *stepLog) Write(p []byte) (int, error) {
	if l.tty {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	n, err := os.Stdout.Write(p)
	if l.tty && l.done > 0 {
		l.bar(l.done, l.total)
	}
	return n, err
}

// progress records and draws the step count.
func (l *stepLog) progress(done, total int) {
	l.done, l.total = done, total
	if l.tty {
		l.bar(done, total)
	}
}

// finish leaves the bar's line.
func (l *stepLog) finish() {
	if l.tty && l.done > 0 {
		fmt.Fprintln(os.Stderr)
	}
}
