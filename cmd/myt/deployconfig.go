package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt/deploy"
)

// deployConfig is how `myt serve` runs deploy jobs: a YAML or JSON file
// (--deploy-config, MYT_DEPLOY_CONFIG), then MYT_TOFU and MYT_ANSIBLE.
// Every field is optional.
type deployConfig struct {
	// Tofu is the OpenTofu or Terraform binary (default: tofu, then
	// terraform, on PATH).
	Tofu string `yaml:"tofu"`
	// TofuCLIConfig is a CLI configuration file, e.g. a provider mirror.
	TofuCLIConfig string `yaml:"tofuCLIConfig"`
	// InfraOverrides: provider → HCL written beside the module as
	// myt_provider_override.tf (custom endpoints and the like).
	InfraOverrides map[string]string `yaml:"infraOverrides"`
	Ansible        string            `yaml:"ansible"`
	Docker         string            `yaml:"docker"`
	// WorkerBinaries: amd64|arm64 → a linux myt binary of this version.
	WorkerBinaries map[string]string `yaml:"workerBinaries"`
	// ComposeEnv is passed to docker compose on every platform (for
	// example MYT_IMAGE_* to use a registry mirror).
	ComposeEnv map[string]string `yaml:"composeEnv"`
	// ShipImages sends every image named in ComposeEnv to hosts as an
	// archive (hosts without registry access).
	ShipImages bool `yaml:"shipImages"`
	// Env is extra environment for the tools (e.g. DOCKER_HOST).
	Env map[string]string `yaml:"env"`
	// AnsibleVars are extra variables for every playbook run, e.g.
	// myt_apt_update_cache: false on hosts without an apt mirror.
	AnsibleVars   map[string]any `yaml:"ansibleVars"`
	SSHTimeout    string         `yaml:"sshTimeout"`
	HealthTimeout string         `yaml:"healthTimeout"`
}

// loadDeployConfig reads file (none when empty) and the environment, and
// checks every value.
func loadDeployConfig(file string) (deploy.Tools, time.Duration, time.Duration, error) {
	var c deployConfig
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return deploy.Tools{}, 0, 0, fmt.Errorf("deploy config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField())
		if err := dec.Decode(&c); err != nil {
			return deploy.Tools{}, 0, 0, fmt.Errorf("deploy config %s: %s", file, yaml.FormatError(err, false, true))
		}
	}
	if v := os.Getenv("MYT_TOFU"); v != "" {
		c.Tofu = v
	}
	if v := os.Getenv("MYT_ANSIBLE"); v != "" {
		c.Ansible = v
	}
	for name, p := range map[string]string{"tofu": c.Tofu, "tofuCLIConfig": c.TofuCLIConfig, "ansible": c.Ansible, "docker": c.Docker} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return deploy.Tools{}, 0, 0, fmt.Errorf("deploy config %s: %w", name, err)
		}
	}
	for arch, p := range c.WorkerBinaries {
		if arch != "amd64" && arch != "arm64" {
			return deploy.Tools{}, 0, 0, fmt.Errorf("deploy config workerBinaries: %q given; allowed: amd64, arm64", arch)
		}
		if _, err := os.Stat(p); err != nil {
			return deploy.Tools{}, 0, 0, fmt.Errorf("deploy config workerBinaries.%s: %w", arch, err)
		}
	}
	dur := func(name, v string) (time.Duration, error) {
		if v == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("deploy config %s: %q is not a duration such as 5m", name, v)
		}
		return d, nil
	}
	sshT, err := dur("sshTimeout", c.SSHTimeout)
	if err != nil {
		return deploy.Tools{}, 0, 0, err
	}
	healthT, err := dur("healthTimeout", c.HealthTimeout)
	if err != nil {
		return deploy.Tools{}, 0, 0, err
	}
	return deploy.Tools{
		Tofu: c.Tofu, TofuCLIConfig: c.TofuCLIConfig, InfraOverrides: c.InfraOverrides, Ansible: c.Ansible, Docker: c.Docker,
		WorkerBinaries: c.WorkerBinaries, ComposeEnv: c.ComposeEnv, ShipImages: c.ShipImages, Env: c.Env, AnsibleVars: c.AnsibleVars,
	}, sshT, healthT, nil
}
