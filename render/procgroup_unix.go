//go:build unix

package render

import (
	"os/exec"
	"syscall"
)

// inGroup starts cmd in its own process group and, when its context
// ends, kills the whole group (a tool's children too).
func inGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
