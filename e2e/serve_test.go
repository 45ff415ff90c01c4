// Package e2e tests MyT from the outside: the real `myt` binary serving on
// loopback, driven by the CLI and by a headless browser.
package e2e

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/myt-iot/myt/internal/testenv"
)

// mytBinary is the real myt binary, built once per test run.
func mytBinary(t *testing.T) string { return testenv.MytBinary(t) }

// server is a running `myt serve`.
type server struct {
	URL   string
	Data  string
	Bin   string
	flags []string
	cmd   *exec.Cmd
	log   *syncBuffer
	// killed is set by kill: the cleanup then expects no clean exit.
	killed atomic.Bool
	// exited is closed when the process has exited.
	exited chan struct{}
}

// kill ends the server with SIGKILL, as a crash would.
func (s *server) kill(t *testing.T) {
	t.Helper()
	s.killed.Store(true)
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Until it has exited, the kernel has not released its lock of the
	// data dir: a server started on it before then would find it taken.
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("myt serve still running 20 s after SIGKILL")
	}
}

// Log returns what the server logged so far.
func (s *server) Log() string { return s.log.String() }

// startServer starts `myt serve` on a free loopback port with a fresh data
// dir and stops it (SIGTERM, expecting a clean exit) when the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, t.TempDir())
}

// startServerWith starts `myt serve` on data with extra flags.
func startServerWith(t *testing.T, data string, flags ...string) *server {
	t.Helper()
	bin := mytBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &server{URL: "http://" + addr, Data: data, Bin: bin, flags: flags, log: &syncBuffer{}}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", data}, flags...)...)
	s.cmd.Env = append(cleanEnv(), "HOME="+data)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	// A test binary that is killed takes its servers (and, through their
	// own Pdeathsig, their tools) with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	s.exited = make(chan struct{})
	go func() {
		err := s.cmd.Wait()
		close(s.exited)
		exited <- err
	}()
	t.Cleanup(func() {
		if s.killed.Load() {
			<-s.exited
			return
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("myt serve did not exit cleanly on SIGTERM: %v\n%s", err, s.Log())
			}
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			t.Errorf("myt serve did not stop within 20 s of SIGTERM\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("myt serve exited: %v\n%s", err, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("myt serve not healthy after 20 s\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanEnv is the environment without MYT_* variables, so a developer's
// own settings do not leak into tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MYT_") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	return env
}

// cli runs the myt binary with args, stdin and extra environment.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

func runCLI(t *testing.T, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mytBinary(t), args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run myt %v: %v", args, err)
	}
	return res
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
