//go:build unix

package handler

import (
	"os/exec"
	"syscall"
)

// setGroup starts cmd in its own process group, so that killGroup ends
// the handler and whatever it started.
func setGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killGroup ends the process group pid leads at once.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
