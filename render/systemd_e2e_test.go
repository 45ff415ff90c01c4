package render_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
)

// TestRolesOnSystemdHost runs the whole rendered site.yml — base,
// data_volume, docker, platform — over SSH on a systemd test host (Debian
// 12, systemd as PID 1, its own Docker engine, an empty data disk), as a
// deploy to an existing server does, with no network but the test's: apt
// installs nothing (myt_apt_update_cache false, packages preinstalled) and
// the images come from the test engine (LoadImages). It checks what an
// operator would: every service healthy, the data directory an ext4
// filesystem on the data disk holding the database, the firewall table
// loaded and its unit enabled, Docker enabled, and a second run that
// changes nothing.
func TestRolesOnSystemdHost(t *testing.T) {
	e := testenv.Require(t)
	playbook := needTool(t, "site.yml runs under the real Ansible", "ansible-playbook")
	h := e.SystemdHost(t)

	d, err := design.Parse([]byte(`apiVersion: myt/v1
kind: Platform
metadata: {name: sdtest}
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

	// The images the platform names, from the test engine. Grafana has a
	// local stand-in when testenv built one; otherwise a tiny web server
	// takes its place (a compose.override.yaml, which the role leaves alone).
	imageEnv := e.ImageEnv()
	if g := e.Image("grafana"); g != "" {
		imageEnv["MYT_IMAGE_GRAFANA"] = g
	} else {
		override := "services:\n  grafana:\n    image: " + e.Image("python") + "\n    entrypoint: [\"python3\", \"-m\", \"http.server\", \"3000\"]\n    command: !reset []\n    environment: !reset {}\n" +
			"    healthcheck:\n      test: [\"CMD\", \"python3\", \"-c\", \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/', timeout=4)\"]\n"
		h.Run(t, "mkdir -p /srv/myt/platform && cat > /srv/myt/platform/compose.override.yaml <<'EOF'\n"+override+"EOF")
		imageEnv["MYT_IMAGE_GRAFANA"] = e.Image("python")
	}
	for _, k := range []string{"MYT_IMAGE_RABBITMQ", "MYT_IMAGE_TIMESCALEDB", "MYT_IMAGE_WORKER"} {
		need(t, "local image for "+k, imageEnv[k] != "", "`scripts/testenv up` did not build it (see its output)")
	}
	refs := []string{imageEnv["MYT_IMAGE_RABBITMQ"], imageEnv["MYT_IMAGE_TIMESCALEDB"], imageEnv["MYT_IMAGE_WORKER"], imageEnv["MYT_IMAGE_GRAFANA"]}
	t0 := time.Now()
	h.LoadImages(t, slices.Compact(slices.Sorted(slices.Values(refs)))...)
	t.Logf("images loaded into the host in %v", time.Since(t0).Round(100*time.Millisecond))

	vars, _ := json.Marshal(map[string]any{
		"myt_data_device":       h.DataDevice,
		"myt_compose_env":       maps.Clone(imageEnv),
		"myt_apt_update_cache":  false,
		"platform_wait_timeout": 300,
		// the ansible.cfg's accept-new finds the host already known: strict
		"ansible_ssh_common_args": "-o UserKnownHostsFile=" + h.KnownHosts,
	})
	varsFile := filepath.Join(work, "vars.json")
	if err := os.WriteFile(varsFile, vars, 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") && !strings.HasPrefix(kv, "MYT_IMAGE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp"), "ANSIBLE_HOME="+filepath.Join(work, "home"))
	recap := regexp.MustCompile(`sdtest\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0`)
	run := func(which string) (changed, output string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, playbook, "--diff", "-v", "--private-key", h.KeyFile, "-e", "@"+varsFile, "site.yml")
		cmd.Dir = filepath.Join(bundle, "ansible")
		cmd.Env = env
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("%s run of site.yml: %v", which, time.Since(t0).Round(100*time.Millisecond))
		if err != nil {
			t.Fatalf("%s run: ansible-playbook: %v\n%s", which, err, out)
		}
		m := recap.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("%s run: no recap:\n%s", which, out)
		}
		return m[2], string(out)
	}
	if c, out := run("first"); c == "0" {
		t.Fatalf("first run changed nothing:\n%s", out)
	}
	if c, out := run("second"); c != "0" {
		t.Errorf("second run changed %s tasks, want 0:\n%s", c, out)
	}

	// Every service is up and healthy, on the host's own engine.
	ps := h.Run(t, "cd /srv/myt/platform && docker compose ps --format '{{.Service}} {{.Health}}'")
	for _, svc := range []string{"rabbitmq", "timescaledb", "worker", "grafana"} {
		if !strings.Contains(ps, svc+" healthy") {
			t.Errorf("%s not healthy:\n%s", svc, ps)
		}
	}
	// The data directory is the data disk, formatted ext4, and the
	// database writes there.
	if got := strings.TrimSpace(h.Run(t, "findmnt --noheadings --output SOURCE,FSTYPE --mountpoint /srv/myt/data")); strings.Join(strings.Fields(got), " ") != h.DataDevice+" ext4" {
		t.Errorf("/srv/myt/data is mounted from %q, want %s ext4", got, h.DataDevice)
	}
	// (the compose file sets PGDATA to .../data/pgdata)
	pgVersion := "/srv/myt/data/timescaledb-data/pgdata/PG_VERSION"
	if got := strings.TrimSpace(h.Run(t, "findmnt --noheadings --output SOURCE --target "+pgVersion+" 2>&1; test -s "+pgVersion+" && echo has-data || true")); got != h.DataDevice+"\nhas-data" {
		t.Errorf("database files on the data disk: %q", got)
	}
	if got := h.Run(t, "grep -c ' /srv/myt/data ext4 ' /proc/mounts; grep -c '^UUID=.* /srv/myt/data ' /etc/fstab"); got != "1\n1\n" {
		t.Errorf("mounts and fstab lines for /srv/myt/data: %q", got)
	}
	// The firewall: table loaded, unit enabled and active; Docker enabled.
	if out := h.Run(t, "nft list table inet myt"); !strings.Contains(out, "chain input") || !strings.Contains(out, "10.250.0.0/16") {
		t.Errorf("nft table inet myt:\n%s", out)
	}
	if got := h.Run(t, "systemctl is-enabled myt-firewall.service docker.service; systemctl is-active myt-firewall.service docker.service"); got != "enabled\nenabled\nactive\nactive\n" {
		t.Errorf("myt-firewall and docker units (enabled, enabled, active, active): %q", got)
	}

	// Without any Compose v2 the docker role stops, saying what to do
	// (offline, so only docker.io is asked of apt).
	h.Run(t, "rm /usr/libexec/docker/cli-plugins/docker-compose")
	play := filepath.Join(bundle, "ansible", "docker-only.yml")
	if err := os.WriteFile(play, []byte("---\n- name: Docker only\n  hosts: platform\n  roles:\n    - role: docker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, playbook, "--private-key", h.KeyFile, "-e", "@"+varsFile,
		"-e", `{"docker_distribution_packages": {"Debian": ["docker.io"]}}`, "docker-only.yml")
	cmd.Dir = filepath.Join(bundle, "ansible")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Docker Compose v2 is needed") || !strings.Contains(string(out), "docker_apt_repository") {
		t.Errorf("docker role without Compose v2: err %v, want a failure naming the remedy:\n%s", err, out)
	}
}
