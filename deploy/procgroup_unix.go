//go:build unix

package deploy

import "syscall"

// signalGroup sends sig to the process group pgid leads.
func signalGroup(pgid int, sig syscall.Signal) { _ = syscall.Kill(-pgid, sig) }
