package handler

import (
	"os"
	"os/exec"
)

// setGroup: Windows has no process groups; `myt code test` still runs a
// handler there, the worker itself runs on Linux only.
func setGroup(*exec.Cmd) {}

// killGroup ends the process pid (not its children).
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
