package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// command is one tool invocation.
type command struct {
	// Path is the program; Args its arguments. Args never carry a secret.
	Path string
	Args []string
	Dir  string
	// Env is the whole environment of the process.
	Env []string
	// Stdin, when set, is the process's standard input.
	Stdin io.Reader
	// Line receives every line of stdout (stream "out") and stderr
	// ("err"), in order per stream. It is called from two goroutines,
	// one per stream, never concurrently for the same stream.
	Line func(stream, line string)
}

// killGrace is how long a cancelled tool gets after SIGTERM (tofu
// releases its state lock on SIGTERM) before its group is killed.
const killGrace = 10 * time.Second

// run starts c in its own process group and waits for it. When ctx ends,
// the whole group gets SIGTERM, then SIGKILL after killGrace: a tool's
// children (ssh, providers, docker) go with it.
func run(ctx context.Context, c command) error {
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	cmd.Stdin = c.Stdin
	cmd.SysProcAttr = groupAttr() // own process group; on Linux, dies with MyT
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Path, err)
	}
	pgid := cmd.Process.Pid
	var wg sync.WaitGroup
	read := func(stream string, r io.Reader) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if c.Line != nil {
				c.Line(stream, sc.Text())
			}
		}
		// A line longer than the buffer: drain the rest so the tool does
		// not block on a full pipe.
		_, _ = io.Copy(io.Discard, r)
	}
	wg.Add(2)
	go read("out", stdout)
	go read("err", stderr)

	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		signalGroup(pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(killGrace):
			signalGroup(pgid, syscall.SIGKILL)
		}
	}()
	wg.Wait()
	err = cmd.Wait()
	close(done)
	// Whatever the group left behind (a daemonized child) goes too.
	signalGroup(pgid, syscall.SIGKILL)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{tool: shortName(c.Path), code: ee.ExitCode()}
	}
	return err
}

// exitError is a tool that exited non-zero.
type exitError struct {
	tool string
	code int
}

func (e *exitError) Error() string { return fmt.Sprintf("%s exited with status %d", e.tool, e.code) }

func shortName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// environ returns base with the variables of extra set (replacing any of
// the same name).
func environ(base []string, extra map[string]string) []string {
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := extra[k]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range extra {
		out = append(out, k+"="+v)
	}
	return out
}
