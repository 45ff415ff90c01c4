package render_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
)

// TestDockerRoleWithoutCompose runs the rendered docker role over SSH on a
// systemd test host (Debian 12, systemd as PID 1, docker.io installed)
// whose Compose v2 plugin is gone: the role stops, saying what to do.
// (The whole site.yml on such a host — data disk, firewall, units, every
// service healthy, a second run that changes nothing — is e2e's
// TestDeploySSH, through MyT's own deploy job.)
func TestDockerRoleWithoutCompose(t *testing.T) {
	e := testenv.Require(t)
	playbook := needTool(t, "the docker role runs under the real Ansible", "ansible-playbook")
	h := e.SystemdHost(t)

	d, err := design.Parse([]byte(`apiVersion: myt/v1
kind: Platform
metadata: {name: sdtest}
spec:
  target: {provider: ssh, credentials: testhost, adminCIDRs: ["10.250.0.0/16"]}
  database: {kind: timescaledb}
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
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") && !strings.HasPrefix(kv, "MYT_IMAGE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+filepath.Join(work, "tmp"), "ANSIBLE_HOME="+filepath.Join(work, "home"))

	h.Run(t, "rm /usr/libexec/docker/cli-plugins/docker-compose")
	play := filepath.Join(bundle, "ansible", "docker-only.yml")
	if err := os.WriteFile(play, []byte("---\n- name: Docker only\n  hosts: platform\n  roles:\n    - role: docker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Offline: apt refreshes nothing and is asked only for docker.io,
	// which the host has.
	cmd := exec.CommandContext(ctx, playbook, "--private-key", h.KeyFile,
		"-e", `{"myt_apt_update_cache": false, "docker_distribution_packages": {"Debian": ["docker.io"]}}`,
		"--ssh-common-args", "-o UserKnownHostsFile="+h.KnownHosts, "docker-only.yml")
	cmd.Dir = filepath.Join(bundle, "ansible")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Docker Compose v2 is needed") || !strings.Contains(string(out), "docker_apt_repository") || !strings.Contains(string(out), "spec.target.dockerRepository") {
		t.Errorf("docker role without Compose v2: err %v, want a failure naming the remedy:\n%s", err, out)
	}
}
