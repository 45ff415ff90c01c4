package testenv

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// LocalPlatformPorts holds, until t ends, the host ports a local platform
// publishes on the test engine (its device ports, and RabbitMQ's
// management, the worker's and Grafana's on 127.0.0.1):
// tests in different packages that deploy one wait for each other here
// instead of failing with "port is already allocated". It is an exclusive
// flock beside the state file, so a killed test releases it.
func (e *Env) LocalPlatformPorts(t testing.TB) {
	t.Helper()
	path := filepath.Join(filepath.Dir(e.path), "local-platform-ports.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("local platform ports lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t0 := time.Now()
		t.Logf("waiting for another test's local platform to release the host ports (%s)", path)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			t.Fatalf("local platform ports lock: %v", err)
		}
		t.Logf("waited %v for the host ports", time.Since(t0).Round(time.Second))
	}
	t.Cleanup(func() { f.Close() })
}
