package render

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Check statuses.
const (
	CheckOK      = "ok"
	CheckFailed  = "failed"
	CheckSkipped = "skipped" // the tool is not installed, or the part is absent
)

// CheckResult is the outcome of one tool on one part of a bundle.
type CheckResult struct {
	Part    string        `json:"part"` // infra, ansible, platform
	Tool    string        `json:"tool"` // for example "terraform validate"
	Status  string        `json:"status"`
	Detail  string        `json:"detail,omitempty"` // the tool's output (tail) or why it was skipped
	Elapsed time.Duration `json:"elapsedNs"`
}

// CheckOptions tune Check.
type CheckOptions struct {
	// Log receives one line per check; nil discards.
	Log *slog.Logger
	// LookPath finds tools; nil means exec.LookPath. Tests replace it.
	LookPath func(string) (string, error)
	// Timeout bounds each tool run; zero means 5 minutes.
	Timeout time.Duration
	// CLIConfig is a tofu/terraform CLI configuration file (for example
	// a provider mirror); empty uses TF_CLI_CONFIG_FILE, then ~/.tofurc
	// or ~/.terraformrc, as the tools do.
	CLIConfig string
	// Registry is the host:port probed when no mirror is configured;
	// empty means the tool's public registry on port 443.
	Registry string
}

// Check runs whichever of tofu/terraform (fmt, init, validate),
// ansible-playbook --syntax-check, ansible-lint and docker compose config
// is installed against the bundle written at dir, and reports each. It
// never changes dir: infra/ is checked in a temporary copy (init writes
// there). An error is returned only when dir is not a bundle; failed tools
// are results, not errors.
func Check(ctx context.Context, dir string, o CheckOptions) ([]CheckResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if _, err := os.Stat(filepath.Join(dir, "platform", "compose.yaml")); err != nil {
		return nil, fmt.Errorf("%s is not a MyT bundle (no platform/compose.yaml): %w", dir, err)
	}
	c := &checker{ctx: ctx, o: o}
	if exists(filepath.Join(dir, "infra")) {
		c.infra(filepath.Join(dir, "infra"))
	}
	if exists(filepath.Join(dir, "ansible")) {
		ad := filepath.Join(dir, "ansible")
		c.run("ansible", "ansible-playbook --syntax-check", ad, nil, "ansible-playbook", "--syntax-check", "site.yml")
		c.run("ansible", "ansible-lint", ad, nil, "ansible-lint", "--offline", "--nocolor", "site.yml")
	}
	c.compose(filepath.Join(dir, "platform"))
	return c.results, nil
}

type checker struct {
	ctx     context.Context
	o       CheckOptions
	results []CheckResult
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func (c *checker) add(r CheckResult) {
	c.results = append(c.results, r)
	c.o.Log.Info("check", "part", r.Part, "tool", r.Tool, "status", r.Status, "elapsed", r.Elapsed.Round(time.Millisecond))
}

// run runs name args in dir and records the result. It returns whether the
// tool ran and succeeded.
func (c *checker) run(part, label, dir string, env []string, name string, args ...string) bool {
	bin, err := c.o.LookPath(name)
	if err != nil {
		c.add(CheckResult{Part: part, Tool: label, Status: CheckSkipped, Detail: name + " is not installed"})
		return false
	}
	start := time.Now()
	out, err := runGroup(c.ctx, c.o.Timeout, dir, env, bin, args...)
	r := CheckResult{Part: part, Tool: label, Status: CheckOK, Elapsed: time.Since(start)}
	if err != nil {
		r.Status = CheckFailed
		r.Detail = tail(out, 4000) + err.Error()
	}
	c.add(r)
	return err == nil
}

func (c *checker) infra(dir string) {
	tool := ""
	for _, n := range []string{"tofu", "terraform"} {
		if _, err := c.o.LookPath(n); err == nil {
			tool = n
			break
		}
	}
	if tool == "" {
		c.add(CheckResult{Part: "infra", Tool: "tofu/terraform", Status: CheckSkipped, Detail: "tofu or terraform: neither is installed"})
		return
	}
	tmp, err := os.MkdirTemp("", "myt-check-")
	if err != nil {
		c.add(CheckResult{Part: "infra", Tool: tool, Status: CheckFailed, Detail: err.Error()})
		return
	}
	defer os.RemoveAll(tmp)
	if err := copyTF(dir, tmp); err != nil {
		c.add(CheckResult{Part: "infra", Tool: tool, Status: CheckFailed, Detail: err.Error()})
		return
	}
	env := []string{"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_DATA_DIR=" + filepath.Join(tmp, ".terraform")}
	if c.o.CLIConfig != "" {
		env = append(env, "TF_CLI_CONFIG_FILE="+c.o.CLIConfig)
	}
	c.run("infra", tool+" fmt -check", tmp, env, tool, "fmt", "-check", "-no-color")
	// init downloads providers: offline and without a mirror it cannot
	// work, which says nothing about the bundle.
	if !hasMirror(c.o.CLIConfig) {
		reg := c.o.Registry
		if reg == "" {
			reg = map[string]string{"tofu": "registry.opentofu.org:443", "terraform": "registry.terraform.io:443"}[tool]
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(c.ctx, "tcp", reg)
		if err != nil {
			why := fmt.Sprintf("skipped: no registry or mirror (%s cannot be reached: %v; name a provider mirror with TF_CLI_CONFIG_FILE, see docs/bundle.md)", reg, err)
			c.add(CheckResult{Part: "infra", Tool: tool + " init -backend=false", Status: CheckSkipped, Detail: why})
			c.add(CheckResult{Part: "infra", Tool: tool + " validate", Status: CheckSkipped, Detail: "needs init"})
			return
		}
		conn.Close()
	}
	if c.run("infra", tool+" init -backend=false", tmp, env, tool, "init", "-backend=false", "-input=false", "-no-color") {
		c.run("infra", tool+" validate", tmp, env, tool, "validate", "-no-color")
	} else {
		c.add(CheckResult{Part: "infra", Tool: tool + " validate", Status: CheckSkipped, Detail: "init failed (providers must be downloadable or in a mirror named by TF_CLI_CONFIG_FILE)"})
	}
}

// hasMirror reports whether the CLI configuration the tools will read
// (file, else TF_CLI_CONFIG_FILE, else ~/.tofurc or ~/.terraformrc) sets
// where providers are installed from.
func hasMirror(file string) bool {
	files := []string{file}
	if file == "" {
		files = []string{os.Getenv("TF_CLI_CONFIG_FILE")}
		if home, err := os.UserHomeDir(); err == nil && files[0] == "" {
			files = []string{filepath.Join(home, ".tofurc"), filepath.Join(home, ".terraformrc")}
		}
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); f != "" && err == nil && bytes.Contains(b, []byte("provider_installation")) {
			return true
		}
	}
	return false
}

func copyTF(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".tf") || strings.HasSuffix(e.Name(), ".tfvars.json")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) compose(dir string) {
	if docker, err := c.o.LookPath("docker"); err == nil {
		if _, err := runGroup(c.ctx, time.Minute, dir, nil, docker, "compose", "version"); err == nil {
			c.run("platform", "docker compose config", dir, nil, "docker", "compose", "config", "--quiet")
			return
		}
	}
	if _, err := c.o.LookPath("docker-compose"); err == nil {
		c.run("platform", "docker-compose config", dir, nil, "docker-compose", "config", "--quiet")
		return
	}
	c.add(CheckResult{Part: "platform", Tool: "docker compose config", Status: CheckSkipped, Detail: "Docker Compose v2 is not installed"})
}

// runGroup runs a tool in its own process group and kills the whole group
// when ctx ends or the timeout passes.
func runGroup(ctx context.Context, timeout time.Duration, dir string, env []string, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	inGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", filepath.Base(bin), ctx.Err())
	}
	return out.Bytes(), err
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	s := strings.TrimRight(string(b), "\n")
	if s != "" {
		s += "\n"
	}
	return s
}
