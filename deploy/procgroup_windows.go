package deploy

import (
	"os"
	"syscall"
)

// groupAttr: Windows has no process groups to start a tool in; deploys
// from Windows are not supported (docs/release.md), this only lets the
// CLI build.
func groupAttr() *syscall.SysProcAttr { return nil }

// signalGroup ends the process pid (not its children: Windows has no
// process groups, and no SIGTERM).
func signalGroup(pid int, _ syscall.Signal) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
