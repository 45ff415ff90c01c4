package deploy

import "syscall"

// groupAttr starts a tool in its own process group. Pdeathsig: if MyT
// itself is killed, the tool goes too (its own children then lose their
// parent's pipes and end).
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
