package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
)

// TestCodeTemplateAndTest runs `myt code template` and then `myt code test`
// on the template with samples: good ones give records, bad ones name
// their reason, and the exit status says so.
func TestCodeTemplateAndTest(t *testing.T) {
	_, err := exec.LookPath("python3")
	testenv.Need(t, "python3", err == nil, "install it with `apt-get install python3`")
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	tpl, err := run("code", "template")
	if err != nil || !strings.Contains(tpl, "def process(msg):") {
		t.Fatalf("template: %v\n%s", err, tpl)
	}
	hp := filepath.Join(dir, "handler.py")
	os.WriteFile(hp, []byte(tpl), 0o600)
	sp := filepath.Join(dir, "samples.ndjson")
	os.WriteFile(sp, []byte(`{"temp_f": 212, "ts": "2024-05-06T07:08:09Z"}
{"topic": "myt/kitchen/env", "payload": {"temp_f": "hot"}}
not json
`), 0o600)
	out, err := run("code", "test", hp, sp)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 samples failed") {
		t.Errorf("exit error = %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out)
	}
	var first struct {
		Records []struct {
			Device string
			TS     string
			Fields map[string]any
		}
	}
	json.Unmarshal([]byte(lines[0]), &first)
	if len(first.Records) != 1 || first.Records[0].Fields["temperature"] != 100.0 || first.Records[0].TS != "2024-05-06T07:08:09Z" || first.Records[0].Device != "sample" {
		t.Errorf("first sample: %s", lines[0])
	}
	if !strings.Contains(lines[1], `"reason":"handler-error"`) || !strings.Contains(lines[1], "ValueError") {
		t.Errorf("second sample: %s", lines[1])
	}
	if !strings.Contains(lines[2], `"reason":"invalid-json"`) {
		t.Errorf("third sample: %s", lines[2])
	}

	// A result the worker cannot decode (a lone surrogate) is named as the
	// worker names it: handler-result, not handler-error.
	os.WriteFile(hp, []byte("def process(msg):\n    return {'s': '\\ud800'} if msg['payload'].get('bad') else msg['payload']\n"), 0o600)
	os.WriteFile(sp, []byte("{\"bad\": true}\n{\"v\": 1}\n"), 0o600)
	out, err = run("code", "test", hp, sp)
	if err == nil || !strings.Contains(out, `"reason":"handler-result"`) || strings.Contains(out, `"reason":"handler-error"`) {
		t.Errorf("undecodable result: err %v, output:\n%s", err, out)
	}
}

// TestWorkerCheck: `myt worker --check` accepts a complete config and names
// the key of a missing secret file or a handler that does not load.
func TestWorkerCheck(t *testing.T) {
	dir := t.TempDir()
	w := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	dsn := w("dsn", "postgres://u:p@127.0.0.1:5432/db")
	pw := w("pw", "secret")
	cfg := func(handler string) string {
		h := ""
		if handler != "" {
			h = "handler: {path: " + w("handler.py", handler) + "}\n"
		}
		return w("worker.yaml", "amqp: {urls: [\"amqp://u@127.0.0.1:5672/\"], passwordFile: "+pw+"}\n"+
			"database: {kind: postgres, dsnFile: "+dsn+"}\n"+h)
	}
	run := func(path string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"worker", "--check", "--config", path})
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	if out, err := run(cfg("")); err != nil || !strings.Contains(out, "worker config OK") {
		t.Errorf("good config: %v %s", err, out)
	}
	if _, err := exec.LookPath("python3"); err == nil {
		if _, err := run(cfg("def process(:\n")); err == nil || !strings.Contains(err.Error(), "handler.path") {
			t.Errorf("broken handler: %v", err)
		}
	}
	os.Remove(dsn)
	if _, err := run(cfg("")); err == nil || !strings.Contains(err.Error(), "database.dsnFile") {
		t.Errorf("missing DSN file: %v", err)
	}
}
