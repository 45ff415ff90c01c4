package render_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
)

func runTool(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAnsibleSyntaxAndLint runs `ansible-playbook --syntax-check` and
// `ansible-lint` on the playbook of every design that has one.
func TestAnsibleSyntaxAndLint(t *testing.T) {
	playbook := needTool(t, "the rendered playbook is checked by the real Ansible", "ansible-playbook")
	lint := needTool(t, "the rendered roles must be ansible-lint clean", "ansible-lint")
	for _, c := range designs(t) {
		if c.d.Spec.Target.Provider == myt.ProviderLocal {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(writeBundle(t, mustRender(t, c.d)), "ansible")
			env := []string{"ANSIBLE_LOCAL_TEMP=" + t.TempDir(), "ANSIBLE_HOME=" + t.TempDir(), "NO_COLOR=1", "ANSIBLE_NOCOLOR=1"}
			if out, err := runTool(t, dir, env, playbook, "--syntax-check", "site.yml"); err != nil {
				t.Fatalf("ansible-playbook --syntax-check: %v\n%s", err, out)
			}
			// The inventory must parse and name the host.
			if out, err := runTool(t, dir, env, "ansible-inventory", "--list", "--yaml"); err != nil || !strings.Contains(out, c.d.Metadata.Name) {
				t.Fatalf("ansible-inventory: %v\n%s", err, out)
			}
			if out, err := runTool(t, dir, env, lint, "--offline", "--nocolor", "site.yml"); err != nil {
				t.Fatalf("ansible-lint: %v\n%s", err, out)
			}
		})
	}
}

// TestFirewallTemplate renders the base role's nftables template with the
// real Ansible template engine and checks the result with `nft -c` when
// nft is installed.
func TestFirewallTemplate(t *testing.T) {
	ansible := needTool(t, "the firewall template is rendered by the real Ansible", "ansible")
	for _, name := range []string{"aws-timescaledb", "ssh-mysql-plaintext"} {
		t.Run(name, func(t *testing.T) {
			d := designNamed(t, name)
			root := writeBundle(t, mustRender(t, d))
			dir := filepath.Join(root, "ansible")
			out := filepath.Join(t.TempDir(), "firewall.nft")
			env := []string{"ANSIBLE_LOCAL_TEMP=" + t.TempDir(), "ANSIBLE_HOME=" + t.TempDir(), "ANSIBLE_NOCOLOR=1"}
			res, err := runTool(t, dir, env, ansible, "localhost", "-c", "local", "-i", "localhost,",
				"-e", "@group_vars/all.yml", "-m", "ansible.builtin.template",
				"-a", "src=roles/base/templates/firewall.nft.j2 dest="+out+" mode=0644")
			if err != nil {
				t.Fatalf("template: %v\n%s", err, res)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			sshPort := "22"
			if d.Spec.Target.Provider == myt.ProviderSSH {
				sshPort = "2222" // testOptions
			}
			for _, want := range []string{"tcp dport " + sshPort + " ip saddr @admin4 accept", "tcp dport " + sshPort + " drop", "ct status dnat meta l4proto tcp ct original proto-dst { 3000 } drop"} {
				if !strings.Contains(text, want) {
					t.Errorf("firewall lacks %q:\n%s", want, text)
				}
			}
			for _, cidr := range d.Spec.Target.AdminCIDRs {
				if !strings.Contains(text, cidr) {
					t.Errorf("firewall lacks admin network %s", cidr)
				}
			}
			if d.Spec.Broker.Plaintext != strings.Contains(text, "1883") {
				t.Errorf("plaintext %v but firewall mentions 1883: %v", d.Spec.Broker.Plaintext, strings.Contains(text, "1883"))
			}
			if strings.Contains(text, "15672") {
				t.Error("firewall opens the management port")
			}
			nft := needTool(t, "the rendered firewall is checked by the real nftables parser (apt-get install nftables)", "nft")
			if res, err := runTool(t, "", nil, nft, "-c", "-f", out); err != nil {
				if strings.Contains(res, "Operation not permitted") {
					need(t, "CAP_NET_ADMIN", false, "nft -c needs it to check the ruleset: "+res)
				}
				t.Fatalf("nft -c: %v\n%s\n%s", err, res, text)
			}
		})
	}
}

// TestFirewallBeforePorts checks the order of the rendered play: the base
// role flushes its handlers (which start the firewall) after every task
// that changes the firewall, and base runs before the roles that start
// Docker and publish ports. Otherwise a failure later in the play would
// leave published ports unfiltered until the play's end.
func TestFirewallBeforePorts(t *testing.T) {
	root := writeBundle(t, mustRender(t, designNamed(t, "ssh-mysql-plaintext")))
	var site []struct {
		Roles []struct {
			Role string `yaml:"role"`
		} `yaml:"roles"`
	}
	readYAML(t, filepath.Join(root, "ansible", "site.yml"), &site)
	var roles []string
	for _, r := range site[0].Roles {
		roles = append(roles, r.Role)
	}
	if i, j := slices.Index(roles, "base"), slices.Index(roles, "docker"); i < 0 || j < 0 || i > j || slices.Index(roles, "platform") < j {
		t.Fatalf("site.yml roles %v: base must come before docker and platform", roles)
	}
	var tasks []map[string]any
	readYAML(t, filepath.Join(root, "ansible", "roles", "base", "tasks", "main.yml"), &tasks)
	flush, lastNotify := -1, -1
	for i, task := range tasks {
		if task["ansible.builtin.meta"] == "flush_handlers" {
			flush = i
		}
		if n, ok := task["notify"]; ok && fmt.Sprint(n) == "Apply the host firewall" {
			lastNotify = i
		}
	}
	if lastNotify < 0 || flush < lastNotify {
		t.Errorf("base role: handlers flushed at task %d, the firewall last changed at task %d", flush, lastNotify)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestDockerRepositoryFromTheDesign: the design's dockerRepository
// reaches the docker role as its apt repository and signing key (Debian
// 12's own Compose is v1); without it the role's defaults (the
// distribution's packages) stay in force.
func TestDockerRepositoryFromTheDesign(t *testing.T) {
	d := designNamed(t, "ssh-mysql-plaintext")
	var vars map[string]any
	if err := yaml.Unmarshal(mustRender(t, d).File("ansible/group_vars/all.yml").Data, &vars); err != nil {
		t.Fatal(err)
	}
	if _, ok := vars["docker_apt_repository"]; ok {
		t.Errorf("docker_apt_repository set without dockerRepository in the design: %v", vars["docker_apt_repository"])
	}
	d.Spec.Target.DockerRepository = "https://apt.example.org/linux/debian/"
	if err := yaml.Unmarshal(mustRender(t, d).File("ansible/group_vars/all.yml").Data, &vars); err != nil {
		t.Fatal(err)
	}
	if vars["docker_apt_repository"] != "https://apt.example.org/linux/debian" || vars["docker_apt_key_url"] != "https://apt.example.org/linux/debian/gpg" {
		t.Errorf("group vars: repository %v, key %v", vars["docker_apt_repository"], vars["docker_apt_key_url"])
	}
}
