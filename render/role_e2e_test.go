package render_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
)

// TestPlatformRoleOverSSH runs the rendered `platform` role with the
// rendered inventory of an ssh design against an SSH test host (which
// deploys onto the test engine): the first run starts every service and
// waits until each is healthy, the second run changes nothing, and the
// secrets land 0600 with their readers' uids. (The base and docker roles
// need systemd and apt on a real machine; data_volume has its own test.)
func TestPlatformRoleOverSSH(t *testing.T) {
	e := testenv.Require(t)
	playbook := needTool(t, "the platform role runs under the real Ansible", "ansible-playbook")
	h := e.SSHHost(t)

	d, err := design.Parse([]byte(`apiVersion: myt/v1
kind: Platform
metadata: {name: roletest}
spec:
  target: {provider: ssh, credentials: testhost, adminCIDRs: ["10.250.0.0/16"]}
  database: {kind: timescaledb}
  broker: {mqtt: true, amqp: false, tls: true, plaintext: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(d)
	o.SSH = render.SSHTarget{Host: h.Addr, Port: h.Port, User: h.User}
	b, err := render.Render(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	bundle := writeBundle(t, b)
	work := t.TempDir()
	platformDir := filepath.Join(work, "platform")
	dataDir := filepath.Join(work, "data")
	if err := os.MkdirAll(platformDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Test-only override, merged by compose: no host ports (other tests
	// may hold them), and Grafana (which has no local image) replaced by a
	// stand-in web server.
	override := "services:\n  rabbitmq:\n    ports: !reset []\n  worker:\n    ports: !reset []\n" +
		"  grafana:\n    image: " + e.Image("python") + "\n    entrypoint: [\"python3\", \"-m\", \"http.server\", \"3000\"]\n    command: !reset []\n    environment: !reset {}\n    ports: !reset []\n" +
		"    healthcheck:\n      test: [\"CMD\", \"python3\", \"-c\", \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/', timeout=4)\"]\n"
	if err := os.WriteFile(filepath.Join(platformDir, "compose.override.yaml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	play := filepath.Join(bundle, "ansible", "platform-only.yml")
	if err := os.WriteFile(play, []byte("---\n- name: Platform only\n  hosts: platform\n  gather_facts: false\n  roles:\n    - role: platform\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars, _ := json.Marshal(map[string]any{
		"myt_platform_dir":        platformDir,
		"myt_data_dir":            dataDir,
		"myt_compose_env":         e.ImageEnv(),
		"platform_wait_timeout":   300,
		"ansible_ssh_common_args": "-o UserKnownHostsFile=" + filepath.Join(work, "known_hosts"),
	})
	varsFile := filepath.Join(work, "vars.json")
	if err := os.WriteFile(varsFile, vars, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := e.DockerCmd(ctx, "compose", "down", "-v")
		cmd.Dir = platformDir
		cmd.Env = append(cmd.Env, "MYT_DATA_DIR="+dataDir)
		_, _ = cmd.CombinedOutput()
	})
	stop := watchBridge(t, e, "myt-roletest_default")
	defer stop()

	// Only the test's own settings: the engine comes from the test host's
	// sshd, as a real target brings its own.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") && !strings.HasPrefix(kv, "MYT_IMAGE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp"), "ANSIBLE_HOME="+filepath.Join(work, "home"))
	recap := regexp.MustCompile(`roletest\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0`)
	run := func() (changed, output string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, playbook, "--diff", "-v", "--private-key", h.KeyFile, "-e", "@"+varsFile, "platform-only.yml")
		cmd.Dir = filepath.Join(bundle, "ansible")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		m := recap.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no recap:\n%s", out)
		}
		return m[2], string(out)
	}
	if c, _ := run(); c == "0" {
		t.Fatal("first run changed nothing")
	}
	if c, out := run(); c != "0" {
		t.Fatalf("second run changed %s tasks, want 0:\n%s", c, out)
	}
	// Every service is up and healthy.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.DockerCmd(ctx, "compose", "ps", "--format", "{{.Service}} {{.Health}}")
	cmd.Dir = platformDir
	cmd.Env = append(cmd.Env, "MYT_DATA_DIR="+dataDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatal(err, string(out))
	}
	for _, svc := range []string{"rabbitmq", "timescaledb", "worker", "grafana"} {
		if !strings.Contains(string(out), svc+" healthy") {
			t.Errorf("%s not healthy:\n%s", svc, out)
		}
	}
	// Secrets: 0600, owned by the service user that reads them.
	for name, uid := range map[string]int{"rabbitmq_definitions.json": 999, "db_dsn": 10001, "grafana_admin_password": 472, "db_password": 0} {
		fi, err := os.Stat(filepath.Join(platformDir, "secrets", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || statUID(fi) != uid {
			t.Errorf("%s: mode %o uid %d, want 0600 uid %d", name, fi.Mode().Perm(), statUID(fi), uid)
		}
	}
}

// watchBridge applies allowBridge as soon as the compose network exists
// (the role creates it and then waits for health in the same command).
func watchBridge(t *testing.T, e *testenv.Env, network string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			out, err := e.DockerCmd(ctx, "network", "inspect", "-f", "{{.Id}}", network).Output()
			if err == nil && len(strings.TrimSpace(string(out))) >= 12 {
				allowBridgeID(t, strings.TrimSpace(string(out)))
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func statUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
