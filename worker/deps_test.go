package worker_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the data plane free of the control plane: the
// worker never imports the web UI, vault, API server, control-plane store
// or deployer (Tailscale's deptest is the model).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/myt-iot/myt/worker/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"/web", "/vault", "/httpapi", "/sqlite", "/deploy", "/render", "/monitor", "/credential", "modernc.org/sqlite"}
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, "github.com/myt-iot/myt") && !strings.HasPrefix(pkg, "modernc.org") {
			continue
		}
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, "github.com/myt-iot/myt"+f) || pkg == f {
				t.Errorf("worker depends on %s", pkg)
			}
		}
	}
}
