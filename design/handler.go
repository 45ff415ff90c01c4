package design

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

// ErrNoPython is returned by CheckHandler when python3 is not installed
// here: the handler's syntax was not checked (the worker, which always
// has Python, reports it when it loads the code).
var ErrNoPython = errors.New("python3 is not installed on this machine: the handler's syntax was not checked")

// compileScript compiles the source on stdin without running it and
// prints where the first syntax error is, as JSON, or nothing.
const compileScript = `import json, sys
src = sys.stdin.buffer.read()
try:
    compile(src, "handler.py", "exec", dont_inherit=True)
except SyntaxError as e:
    print(json.dumps({"line": e.lineno or 0, "col": e.offset or 0, "msg": e.msg, "text": (e.text or "").rstrip()}))
except ValueError as e:
    print(json.dumps({"line": 0, "col": 0, "msg": str(e), "text": ""}))
`

// CheckHandler compiles a handler's Python source with python3 (it does
// not run it) and returns an EINVALID *myt.Error on the field
// spec.processing.handler naming the line and column of the first syntax
// error, ErrNoPython when python3 is missing, or nil. Empty source (store
// as received) is fine.
func CheckHandler(ctx context.Context, src string) error {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		return ErrNoPython
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// -I: isolated (no user site, no PYTHON* variables, no current
	// directory on the path); compile() runs none of the code.
	cmd := exec.CommandContext(ctx, py, "-I", "-c", compileScript)
	cmd.Stdin = strings.NewReader(src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("check handler syntax with %s: %w: %s", py, err, strings.TrimSpace(stderr.String()))
	}
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return nil
	}
	var se struct {
		Line, Col int
		Msg, Text string
	}
	if err := json.Unmarshal(out, &se); err != nil {
		return fmt.Errorf("check handler syntax: %w (%q)", err, out)
	}
	msg := "Python syntax error: " + se.Msg
	if se.Line > 0 {
		msg = fmt.Sprintf("line %d, column %d: %s", se.Line, max(se.Col, 1), msg)
		if t := strings.TrimSpace(se.Text); t != "" {
			msg += fmt.Sprintf(" (in %q)", t)
		}
	}
	return &myt.Error{Code: myt.EINVALID, Message: "The handler is not valid Python.",
		Fields: []myt.FieldError{{Field: "spec.processing.handler", Message: msg}}}
}
