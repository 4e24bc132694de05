//go:build !(linux || darwin)

package main

import "os/exec"

// ownProcessGroup leaves cmd in the launcher's group, where process groups are not Unix's.
func ownProcessGroup(*exec.Cmd) {}
