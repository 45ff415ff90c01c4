package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Check is one tool the deploy jobs need, as found on this machine.
type Check struct {
	Tool    string `json:"tool"`
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
	// OK is false when the tool is missing or older than Minimum.
	OK      bool   `json:"ok"`
	Minimum string `json:"minimum"`
	// Needed says which targets need it.
	Needed string `json:"needed"`
	// Problem and Fix are set when not OK.
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

var versionRE = regexp.MustCompile(`v?(\d+)\.(\d+)(?:\.(\d+))?`)

// atLeast compares the first version in s with min (major.minor).
func atLeast(s, min string) (string, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	want := versionRE.FindStringSubmatch(min)
	for i := 1; i <= 2; i++ {
		a, _ := strconv.Atoi(m[i])
		b, _ := strconv.Atoi(want[i])
		if a != b {
			return strings.TrimPrefix(m[0], "v"), a > b
		}
	}
	return strings.TrimPrefix(m[0], "v"), true
}

// Doctor checks the tools: OpenTofu or Terraform (clouds), ansible-playbook
// (clouds and ssh), docker with Compose v2 (local; and image archives).
// With a provider, only the tools that provider needs are checked.
func Doctor(ctx context.Context, t Tools, provider string) []Check {
	probe := func(c Check, configured string, names []string, args ...string) Check {
		if provider != "" && !needs(c, provider) {
			c.OK, c.Problem = true, "not checked: "+provider+" does not need it"
			return c
		}
		path, err := lookPath(configured, names...)
		if err != nil {
			c.Problem = err.Error()
			return c
		}
		c.Path = path
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = environ(os.Environ(), t.Env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			c.Problem = fmt.Sprintf("%s %s failed: %v", path, strings.Join(args, " "), err)
			return c
		}
		c.Version, c.OK = atLeast(string(out), c.Minimum)
		if !c.OK {
			c.Problem = fmt.Sprintf("version %s is older than %s", c.Version, c.Minimum)
		}
		return c
	}
	var checks []Check
	checks = append(checks,
		probe(Check{Tool: "tofu", Minimum: "1.6", Needed: "aws, openstack, azure, gcp",
			Fix: "install OpenTofu (https://opentofu.org/docs/intro/install/) or Terraform >= 1.6, or set `tofu:` in the deploy config"},
			t.Tofu, []string{"tofu", "terraform"}, "version"),
		probe(Check{Tool: "ansible-playbook", Minimum: "2.14", Needed: "aws, openstack, azure, gcp, ssh",
			Fix: "apt-get install ansible-core (Debian 12 and Ubuntu 22.04 or later), or pip install ansible-core"},
			t.Ansible, []string{"ansible-playbook"}, "--version"),
		probe(Check{Tool: "docker", Minimum: "20.10", Needed: "local",
			Fix: "apt-get install docker.io, and start it (systemctl enable --now docker)"},
			t.Docker, []string{"docker"}, "version", "--format", "{{.Server.Version}}"),
		probe(Check{Tool: "docker compose", Minimum: "2.0", Needed: "local",
			Fix: "install Compose v2: apt-get install docker-compose-v2 (Ubuntu) or docker-compose-plugin (Docker's repository)"},
			t.Docker, []string{"docker"}, "compose", "version", "--short"),
	)
	if provider != "" {
		kept := checks[:0]
		for _, c := range checks {
			if needs(c, provider) {
				kept = append(kept, c)
			}
		}
		checks = kept
	}
	return checks
}

func needs(c Check, provider string) bool {
	return strings.Contains(", "+c.Needed+",", " "+provider+",")
}

// Need returns the first failed check among the tools a target needs, or
// nil.
func Need(checks []Check, provider string) *Check {
	for i, c := range checks {
		if !c.OK && needs(c, provider) {
			return &checks[i]
		}
	}
	return nil
}
