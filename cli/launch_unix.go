//go:build linux || darwin

package main

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a process group of its own: a Ctrl-C at the terminal
// reaches the launcher, which passes it on, and not the rank twice.
func ownProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
