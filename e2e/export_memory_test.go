package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
)

// TestExportMemory measures, without asserting it, what a large export
// costs `myt serve`: it deploys a local TimescaleDB platform, and runs
// bench/export against it, which imports MYT_EXPORT_ROWS records through
// the worker and exports them through MyT's route while it samples the
// server's RSS. Skipped unless MYT_EXPORT_ROWS is set (1000000 for the
// figures in bench/export/README.md).
func TestExportMemory(t *testing.T) {
	rows, _ := strconv.Atoi(os.Getenv("MYT_EXPORT_ROWS"))
	if rows <= 0 {
		t.Skip("set MYT_EXPORT_ROWS (for example 1000000) to measure an export's cost")
	}
	e := testenv.Require(t)
	testenv.Need(t, "root", os.Geteuid() == 0, "a local platform's secret files are chowned to the services' users")
	e.LocalPlatformPorts(t)
	bench := filepath.Join(t.TempDir(), "bench-export")
	if out, err := exec.Command("go", "build", "-o", bench, "../bench/export").CombinedOutput(); err != nil {
		t.Fatalf("build bench/export: %v\n%s", err, out)
	}
	data := t.TempDir()
	srv, c := deployServer(t, e, data)
	p := createPlatform(t, c, `apiVersion: myt/v1
kind: Platform
metadata: {name: bench-export}
spec:
  target: {provider: local}
  database: {kind: timescaledb, fields: {temperature: float}}
`)
	t.Cleanup(func() {
		if j, err := c.StartJob(context.Background(), p.ID, myt.JobRequest{Kind: myt.JobDestroy}); err == nil {
			waitJob(t, c, j.ID, 5*time.Minute)
		}
	})
	runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobDeploy})
	token := filepath.Join(data, "platforms", fmt.Sprint(p.ID), "platform", "secrets", "worker_api_token")
	cmd := exec.Command(bench, "-platform", p.Name, "-pid", strconv.Itoa(srv.cmd.Process.Pid), "-seed", strconv.Itoa(rows), "-worker-token-file", token)
	cmd.Env = append(os.Environ(), "MYT_SERVER="+srv.URL, "MYT_TOKEN="+c.Token)
	out, err := cmd.CombinedOutput()
	t.Logf("bench/export, %d records:\n%s", rows, out)
	if err != nil {
		t.Fatalf("bench/export: %v", err)
	}
}
