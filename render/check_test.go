package render_test

import (
	"context"
	"os/exec"
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
// skipped with a reason, and a broken compose file fails.
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
