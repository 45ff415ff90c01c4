package render_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/myt-iot/myt/render"
)

// TestCheckRunsRealTools runs Check (what `myt render --check` does) on an
// OpenStack bundle with every tool installed, providers coming from the
// test mirror.
func TestCheckRunsRealTools(t *testing.T) {
	tfBinary(t)
	needTool(t, "Check runs ansible-playbook", "ansible-playbook")
	needTool(t, "Check runs ansible-lint", "ansible-lint")
	composeCommand(t)
	t.Setenv("TF_CLI_CONFIG_FILE", tfMirror(t, "openstack"))
	t.Setenv("CHECKPOINT_DISABLE", "1")
	dir := writeBundle(t, mustRender(t, designNamed(t, "openstack-mysql")))
	res, err := render.Check(context.Background(), dir, render.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tools []string
	for _, r := range res {
		tools = append(tools, r.Tool)
		if r.Status != render.CheckOK {
			t.Errorf("%s %s: %s\n%s", r.Part, r.Tool, r.Status, r.Detail)
		}
	}
	joined := strings.Join(tools, "|")
	for _, want := range []string{"fmt -check", "init -backend=false", "validate", "ansible-playbook --syntax-check", "ansible-lint", "config"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q check in %v", want, tools)
		}
	}
}

// TestCheckReportsMissingTools: with nothing installed every check is
// skipped with a reason, and a directory without a bundle is an error.
func TestCheckReportsMissingTools(t *testing.T) {
	dir := writeBundle(t, mustRender(t, designNamed(t, "aws-timescaledb")))
	none := func(string) (string, error) { return "", exec.ErrNotFound }
	res, err := render.Check(context.Background(), dir, render.CheckOptions{LookPath: none})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("results %+v", res)
	}
	for _, r := range res {
		if r.Status != render.CheckSkipped || !(strings.Contains(r.Detail, "not installed") || strings.Contains(r.Detail, "is installed")) {
			t.Errorf("%+v", r)
		}
	}
	if _, err := render.Check(context.Background(), t.TempDir(), render.CheckOptions{}); err == nil {
		t.Error("Check accepted a directory that is not a bundle")
	}
}

// TestCheckReportsFailingTools: a tool that exits non-zero is a failed
// result whose Detail carries the tool's output and exit status; validate
// is skipped when init failed.
func TestCheckReportsFailingTools(t *testing.T) {
	dir := writeBundle(t, mustRender(t, designNamed(t, "aws-timescaledb")))
	bin := filepath.Join(t.TempDir(), "failing-tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho \"tool refused: $*\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	failing := func(string) (string, error) { return bin, nil }
	// A mirror is configured, so init runs (and fails) even offline.
	mirror := filepath.Join(t.TempDir(), "tofurc")
	if err := os.WriteFile(mirror, []byte("provider_installation {\n  direct {}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := render.Check(context.Background(), dir, render.CheckOptions{LookPath: failing, CLIConfig: mirror})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]render.CheckResult{}
	for _, r := range res {
		status[r.Tool] = r
	}
	for _, tool := range []string{"tofu fmt -check", "tofu init -backend=false", "ansible-playbook --syntax-check", "ansible-lint", "docker-compose config"} {
		r, ok := status[tool]
		if !ok {
			t.Errorf("no %s result in %+v", tool, res)
			continue
		}
		if r.Status != render.CheckFailed || !strings.Contains(r.Detail, "tool refused: ") || !strings.Contains(r.Detail, "exit status 3") {
			t.Errorf("%s: %+v", tool, r)
		}
	}
	if r := status["tofu validate"]; r.Status != render.CheckSkipped || !strings.Contains(r.Detail, "init failed") {
		t.Errorf("validate after a failed init: %+v", r)
	}
	if len(res) != 6 {
		t.Errorf("%d results, want 6: %+v", len(res), res)
	}
}

// TestCheckBrokenComposeFile: the real Compose refuses a compose.yaml that
// depends on an undefined service, and Check reports it failed with
// Compose's message.
func TestCheckBrokenComposeFile(t *testing.T) {
	composeCommand(t)
	dir := writeBundle(t, mustRender(t, designNamed(t, "local-influxdb")))
	if err := os.WriteFile(filepath.Join(dir, "platform", "compose.yaml"), []byte("services:\n  broken:\n    image: x\n    depends_on: [missingservice]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	onlyCompose := func(name string) (string, error) {
		if name == "docker" || name == "docker-compose" {
			return exec.LookPath(name)
		}
		return "", exec.ErrNotFound
	}
	res, err := render.Check(context.Background(), dir, render.CheckOptions{LookPath: onlyCompose})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Part != "platform" || res[0].Status != render.CheckFailed || !strings.Contains(res[0].Detail, "missingservice") {
		t.Errorf("results %+v", res)
	}
}

// TestCheckOfflineWithoutMirror: with no provider mirror configured and
// the registry out of reach, init cannot work whatever the bundle says:
// it is skipped with the reason, not reported as a failure of the bundle.
func TestCheckOfflineWithoutMirror(t *testing.T) {
	dir := writeBundle(t, mustRender(t, designNamed(t, "aws-timescaledb")))
	bin := filepath.Join(t.TempDir(), "failing-tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho \"tool refused: $*\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TF_CLI_CONFIG_FILE", filepath.Join(t.TempDir(), "absent.tfrc"))
	// A port nobody listens on: the registry cannot be reached.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	res, err := render.Check(context.Background(), dir, render.CheckOptions{LookPath: func(string) (string, error) { return bin, nil }, Registry: closed})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]render.CheckResult{}
	for _, r := range res {
		status[r.Tool] = r
	}
	if r := status["tofu init -backend=false"]; r.Status != render.CheckSkipped || !strings.Contains(r.Detail, "no registry or mirror") || !strings.Contains(r.Detail, closed) {
		t.Errorf("init offline without a mirror: %+v", r)
	}
	if r := status["tofu fmt -check"]; r.Status != render.CheckFailed {
		t.Errorf("fmt needs no network and still runs: %+v", r)
	}
}
