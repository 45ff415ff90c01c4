package release_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/internal/testenv"
)

// TestImage builds images/myt/Dockerfile from this release's image
// context on the test environment's debootstrap base (the public build
// uses debian:bookworm-slim), runs it on the private engine and checks
// that it runs as non-root, reports healthy through its own HEALTHCHECK,
// answers /healthz, holds no build tools, and that an account made
// through it survives a restart of the container.
func TestImage(t *testing.T) {
	e := testenv.Require(t)
	base := e.Image("base")
	testenv.Need(t, "image base", base != "", "`scripts/testenv up` did not build it")
	dir := release(t, version)
	ctxDir := filepath.Join(dir, "image", "amd64")
	if _, err := os.Stat(filepath.Join(ctxDir, "rootfs", "usr", "lib", "myt", "worker", "linux-arm64", "myt")); err != nil {
		t.Fatalf("image context lacks the arm64 worker binary: %v", err)
	}
	tag := fmt.Sprintf("myt-release-test/myt:%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	build := e.DockerCmd(ctx, "build", "-q", "--build-arg", "BASE="+base, "-t", tag, ctxDir)
	build.Env = append(build.Env, "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build images/myt: %v\n%s", err, out)
	}
	t.Logf("docker build images/myt on the test base: %s", time.Since(start).Round(time.Second))
	t.Cleanup(func() { _, _ = e.DockerCmd(context.Background(), "rmi", "-f", tag).CombinedOutput() })

	var cfg []struct {
		Size   int64
		Config struct {
			User        string
			Volumes     map[string]struct{}
			Healthcheck *struct{ Test []string }
		}
	}
	if err := json.Unmarshal([]byte(e.Docker(t, "image", "inspect", tag)), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	t.Logf("image size: %.0f MB", float64(cfg[0].Size)/1e6)
	if cfg[0].Config.User == "" || strings.HasPrefix(cfg[0].Config.User, "0") || strings.HasPrefix(cfg[0].Config.User, "root") {
		t.Errorf("image user %q: want a non-root user", cfg[0].Config.User)
	}
	if _, ok := cfg[0].Config.Volumes["/var/lib/myt"]; !ok {
		t.Errorf("image volumes %v: want /var/lib/myt", cfg[0].Config.Volumes)
	}
	if cfg[0].Config.Healthcheck == nil {
		t.Fatal("image has no HEALTHCHECK")
	}

	name := fmt.Sprintf("myt-release-test-%d", os.Getpid())
	vol := name + "-data"
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := e.DockerCmd(context.Background(), "logs", "--tail", "50", name).CombinedOutput()
			t.Logf("container logs:\n%s", out)
		}
		_, _ = e.DockerCmd(context.Background(), "rm", "-f", name).CombinedOutput()
		_, _ = e.DockerCmd(context.Background(), "volume", "rm", "-f", vol).CombinedOutput()
	})
	// The image's own HEALTHCHECK, checked every second instead of 30.
	e.Docker(t, "run", "-d", "--name", name, "-v", vol+":/var/lib/myt", "--health-interval", "1s", "--health-start-period", "60s", tag)
	waitHealthy := func() {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			st := strings.TrimSpace(e.Docker(t, "inspect", "-f", "{{.State.Health.Status}}", name))
			if st == "healthy" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("container health %q after 90 s", st)
			}
			time.Sleep(time.Second)
		}
	}
	waitHealthy()
	waitHealthz(t, e, name, "127.0.0.1:8080")
	out := mustIn(t, e, name, "", `id -u; id -g; stat -c '%u %a' /var/lib/myt; for c in go gcc cc make apt-get dpkg-buildpackage; do command -v $c || true; done`)
	if !strings.HasPrefix(out, "10001\n10001\n10001 700\n") {
		t.Errorf("uid, gid, data dir owner and mode in the container:\n%s", out)
	}
	if strings.Contains(out, "/go\n") || strings.Contains(out, "gcc") || strings.Contains(out, "/cc\n") || strings.Contains(out, "make") {
		t.Errorf("build tools in the image:\n%s", out)
	}
	// The worker binary a deploy from this container ships to an arm64 host.
	mustIn(t, e, name, "", "test -x /usr/lib/myt/worker/linux-arm64/myt")

	password := "correct horse battery " + fmt.Sprint(time.Now().UnixNano())
	cli := "export MYT_CONFIG=/tmp/cli.json MYT_SERVER=http://127.0.0.1:8080; "
	mustIn(t, e, name, password, cli+"myt login --setup --username ada --password-stdin")
	signIn := func(when string) {
		t.Helper()
		waitHealthy()
		if out, err := inContainer(t, e, name, password, cli+"myt login --username ada --password-stdin"); err != nil {
			t.Errorf("sign in %s: %v\n%s", when, err, out)
		}
		out, _ := inContainer(t, e, name, "", "curl -fsS http://127.0.0.1:8080/api/v1/status")
		if !strings.Contains(strings.ReplaceAll(out, " ", ""), `"needsSetup":false`) {
			t.Errorf("%s the server wants setting up again: %s", when, out)
		}
	}
	e.Docker(t, "restart", "-t", "20", name)
	signIn("after a restart")
	// A new container on the same volume: the data is in the volume, not
	// in the container.
	e.Docker(t, "rm", "-f", name)
	e.Docker(t, "run", "-d", "--name", name, "-v", vol+":/var/lib/myt", "--health-interval", "1s", "--health-start-period", "60s", tag)
	signIn("in a new container on the same volume")
}
