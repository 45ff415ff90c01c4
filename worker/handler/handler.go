// Package handler runs the user's Python handler (handler.py, defining
// process(msg)) in a long-lived python3 subprocess that speaks batched JSON
// lines, restarts it when it hangs or dies, and swaps in new code between
// batches.
package handler

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/myt-iot/myt/worker/record"
)

//go:embed runner.py
var runnerPy []byte

//go:embed template.py
var templatePy []byte

// Template returns the documented handler.py template that
// `myt code template` prints.
func Template() []byte { return bytes.Clone(templatePy) }

// Result is the handler's answer for one message: Value is the decoded
// return value (numbers as json.Number), or Kind says why there is none
// and Err gives the detail (the exception text for Raised).
type Result struct {
	Value any
	Err   string
	Kind  Kind
}

// Kind classifies a Result.
type Kind int

// Result kinds. A Result is a failure when its Kind is not OK.
const (
	OK        Kind = iota
	Raised         // process() raised an exception
	TimedOut       // the process hung past the timeout on this message
	Crashed        // the process died on this message, or broke the protocol
	BadResult      // process() returned a value that cannot be decoded
)

// Options configure a Runner.
type Options struct {
	Path    string        // handler.py
	Python  string        // interpreter, default python3
	Timeout time.Duration // per message
	Log     *slog.Logger
}

// Runner owns the Python process. Process and Swap are safe for
// concurrent use; batches are served one at a time.
type Runner struct {
	opts Options
	dir  string // holds runner.py
	mu   sync.Mutex
	p    *proc
	// Restarts counts process restarts (timeouts and crashes).
	restarts int
}

// ErrFatal wraps a handler that cannot be (re)started, for example one
// whose import fails.
var ErrFatal = errors.New("handler cannot start")

// New starts the handler process and waits until it has imported
// handler.py. The caller must Close the Runner.
func New(ctx context.Context, o Options) (*Runner, error) {
	if o.Python == "" {
		o.Python = "python3"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "myt-handler-")
	if err != nil {
		return nil, fmt.Errorf("handler temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runner.py"), runnerPy, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write runner: %w", err)
	}
	r := &Runner{opts: o, dir: dir}
	p, err := r.start(ctx, o.Path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r.p = p
	return r, nil
}

// SetPath changes the file used for later restarts (after the running
// code's file was renamed).
func (r *Runner) SetPath(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts.Path = path
}

// Restarts returns how many times the process was restarted.
func (r *Runner) Restarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts
}

// Swap starts path as the new handler and, once it has loaded, replaces the
// old one between two batches: every message is processed by exactly one
// of them. On error the old handler stays.
func (r *Runner) Swap(ctx context.Context, path string) error {
	p, err := r.start(ctx, path)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.p
	r.p = p
	r.opts.Path = path
	r.mu.Unlock()
	if old != nil {
		old.kill()
	}
	r.opts.Log.Info("handler swapped", "path", path)
	return nil
}

// Close stops the process.
func (r *Runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		r.p.stop()
		r.p = nil
	}
	return os.RemoveAll(r.dir)
}

// Process runs the handler on a batch and returns one Result per input. A
// message that raises gets Kind Raised and its exception text; one during
// which the handler hangs past the timeout or dies gets TimedOut or Crashed,
// the process is restarted and the rest of the batch is sent again. The error is non-nil
// only when the process cannot be restarted or ctx ends.
func (r *Runner) Process(ctx context.Context, ins []record.Input) ([]Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Result, 0, len(ins))
	for len(out) < len(ins) {
		if r.p == nil {
			p, err := r.start(ctx, r.opts.Path)
			if err != nil {
				return nil, err
			}
			r.p = p
		}
		rest := ins[len(out):]
		n, failure, err := r.p.serve(ctx, rest, r.opts.Timeout, &out)
		if err != nil {
			if ctx.Err() != nil {
				// The process still owes results for this batch: a later
				// batch would read them as its own. Start afresh.
				r.p.kill()
				r.p = nil
			}
			return nil, err
		}
		if failure.Kind == OK {
			continue
		}
		// The process hung or died on rest[n]: that message gets the blame.
		out = append(out, failure)
		r.opts.Log.Warn("handler restarted", "reason", failure.Err, "id", rest[n].ID)
		r.p.kill()
		r.p = nil
		r.restarts++
	}
	return out, nil
}

type wireMsg struct {
	ID      string `json:"id"`
	Device  string `json:"device"`
	Topic   string `json:"topic"`
	Stream  string `json:"stream"`
	TS      string `json:"ts"`
	Payload any    `json:"payload"`
}

type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	done   chan struct{} // closed when the process has exited
	stderr *tail
	buf    bytes.Buffer
}

func (r *Runner) start(ctx context.Context, path string) (*proc, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no handler path", ErrFatal)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFatal, err)
	}
	cmd := exec.Command(r.opts.Python, "-u", filepath.Join(r.dir, "runner.py"), path)
	setGroup(cmd)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	t := &tail{log: r.opts.Log.With("handler", filepath.Base(path))}
	cmd.Stderr = t
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %v", ErrFatal, r.opts.Python, err)
	}
	p := &proc{cmd: cmd, stdin: stdin, lines: make(chan []byte, 256), done: make(chan struct{}), stderr: t}
	go func() {
		br := bufio.NewReaderSize(stdout, 1<<16)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && err == nil {
				p.lines <- line
			}
			if err != nil {
				close(p.lines)
				return
			}
		}
	}()
	go func() { cmd.Wait(); close(p.done) }()
	// Wait for the handshake.
	timer := time.NewTimer(r.opts.Timeout + 30*time.Second)
	defer timer.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			p.kill()
			return nil, fmt.Errorf("%w: %s exited while loading: %s", ErrFatal, path, t.last())
		}
		var hs struct {
			Ready bool   `json:"ready"`
			Fatal string `json:"fatal"`
		}
		if json.Unmarshal(line, &hs) != nil || !hs.Ready {
			p.kill()
			return nil, fmt.Errorf("%w: %s: %s", ErrFatal, path, hs.Fatal)
		}
	case <-timer.C:
		p.kill()
		return nil, fmt.Errorf("%w: %s did not load in time", ErrFatal, path)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
	return p, nil
}

// serve sends the batch and appends results to out. It returns a failure
// (Kind TimedOut or Crashed) when the process hung or died on ins[n]
// (n = results received).
func (p *proc) serve(ctx context.Context, ins []record.Input, timeout time.Duration, out *[]Result) (n int, failure Result, err error) {
	p.buf.Reset()
	p.buf.WriteByte('[')
	enc := json.NewEncoder(&p.buf)
	for i, in := range ins {
		if i > 0 {
			p.buf.WriteByte(',')
		}
		if err := enc.Encode(wireMsg{ID: in.ID, Device: in.Device, Topic: in.Topic, Stream: in.Stream, TS: in.TS.Format(time.RFC3339Nano), Payload: in.Payload}); err != nil {
			return 0, failure, fmt.Errorf("encode message %s: %w", in.ID, err)
		}
		p.buf.Truncate(p.buf.Len() - 1) // Encode's newline
	}
	p.buf.WriteString("]\n")
	if _, err := p.stdin.Write(p.buf.Bytes()); err != nil {
		return 0, Result{Kind: Crashed, Err: "handler crashed: " + p.stderr.last()}, nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for n = 0; n < len(ins); n++ {
		if n > 0 {
			timer.Reset(timeout)
		}
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				return n, Result{Kind: Crashed, Err: "handler crashed: " + p.stderr.last()}, nil
			}
			res, failure := decodeResult(line)
			if failure.Kind != OK {
				return n, failure, nil
			}
			*out = append(*out, res)
		case <-timer.C:
			return n, Result{Kind: TimedOut, Err: fmt.Sprintf("handler timed out after %s", timeout)}, nil
		case <-ctx.Done():
			return n, failure, ctx.Err()
		}
	}
	return n, failure, nil
}

// decodeResult reads one result line, {"r": value} or {"e": "text"},
// parsing it once. A line that breaks the protocol gives a Crashed
// failure; a well-formed line whose value cannot be decoded (a lone
// surrogate, which encoding/json accepts and DecodeJSON refuses) is that
// message's BadResult.
func decodeResult(line []byte) (res Result, failure Result) {
	v, err := record.DecodeJSON(line)
	if err != nil {
		// Rare: tell a bad line from a bad value.
		var raw struct {
			R json.RawMessage `json:"r"`
			E *string         `json:"e"`
		}
		if perr := json.Unmarshal(line, &raw); perr != nil {
			return res, protocolError(perr.Error())
		}
		if raw.E != nil {
			return Result{Kind: Raised, Err: *raw.E}, failure
		}
		return Result{Kind: BadResult, Err: "handler result: " + err.Error()}, failure
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return res, protocolError(fmt.Sprintf("result line is %T, want an object", v))
	}
	if e, ok := obj["e"]; ok && e != nil {
		text, ok := e.(string)
		if !ok {
			return res, protocolError(fmt.Sprintf("\"e\" is %T, want a string", e))
		}
		return Result{Kind: Raised, Err: text}, failure
	}
	r, ok := obj["r"]
	if !ok {
		return Result{Kind: BadResult, Err: `handler result: no "r" in the result line`}, failure
	}
	return Result{Value: r}, failure
}

func protocolError(detail string) Result {
	return Result{Kind: Crashed, Err: "handler protocol error: " + detail}
}

// kill ends the whole process group at once.
func (p *proc) kill() {
	killGroup(p.cmd.Process.Pid)
	go func() {
		for range p.lines { // let the reader goroutine end
		}
	}()
	<-p.done
}

// stop closes stdin so the runner exits by itself, then kills the group.
func (p *proc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
	p.kill()
}

// tail forwards the handler's stderr to the log and keeps its last lines
// for crash reasons.
type tail struct {
	log   *slog.Logger
	mu    sync.Mutex
	lines []string
	part  []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, b...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		line := string(t.part[:i])
		t.part = t.part[i+1:]
		t.log.Warn("handler stderr", "line", line)
		t.lines = append(t.lines, line)
		if len(t.lines) > 5 {
			t.lines = t.lines[1:]
		}
	}
	if len(t.part) > 4096 {
		t.part = t.part[:0]
	}
	return len(b), nil
}

func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "process exited"
	}
	return strings.Join(t.lines, " | ")
}
