//go:build unix && !linux

package deploy

import "syscall"

// groupAttr starts a tool in its own process group (macOS has no
// Pdeathsig: a tool outlives a SIGKILLed MyT there).
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
