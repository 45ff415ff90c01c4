package render_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// composeCommand finds Docker Compose v2: the docker CLI plugin (as the
// test environment sets it up through DOCKER_CONFIG) or a standalone
// docker-compose v2 binary.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if docker, err := exec.LookPath("docker"); err == nil {
		if out, err := exec.Command(docker, "compose", "version", "--short").Output(); err == nil && strings.HasPrefix(strings.TrimPrefix(string(out), "v"), "2.") {
			return []string{docker, "compose"}
		}
	}
	if dc, err := exec.LookPath("docker-compose"); err == nil {
		if out, err := exec.Command(dc, "version", "--short").Output(); err == nil && strings.HasPrefix(strings.TrimPrefix(string(out), "v"), "2.") {
			return []string{dc}
		}
	}
	need(t, "docker compose v2", false, "`docker compose config` validates every rendered compose file (eval \"$(scripts/testenv env)\")")
	return nil
}

// TestComposeConfig runs `docker compose config` on every rendered
// platform, with and without image overrides, and checks what Compose
// resolved.
func TestComposeConfig(t *testing.T) {
	compose := composeCommand(t)
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(writeBundle(t, mustRender(t, c.d)), "platform")
			args := append(compose[1:], "config", "--format", "yaml")
			env := []string{"MYT_IMAGE_RABBITMQ=", "MYT_IMAGE_WORKER=", "MYT_DATA_DIR="}
			out, err := runTool(t, dir, env, compose[0], args...)
			if err != nil {
				t.Fatalf("compose config: %v\n%s", err, out)
			}
			var cfg struct {
				Services map[string]struct {
					Image   string `yaml:"image"`
					Volumes []struct {
						Type   string `yaml:"type"`
						Target string `yaml:"target"`
					} `yaml:"volumes"`
					Logging struct {
						Driver  string            `yaml:"driver"`
						Options map[string]string `yaml:"options"`
					} `yaml:"logging"`
				} `yaml:"services"`
				Volumes map[string]struct {
					DriverOpts map[string]string `yaml:"driver_opts"`
				} `yaml:"volumes"`
			}
			if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
				t.Fatalf("compose output: %v\n%s", err, out)
			}
			if img := cfg.Services["rabbitmq"].Image; img != "rabbitmq:3.13.7-management" {
				t.Errorf("default rabbitmq image %q", img)
			}
			if dev := cfg.Volumes["grafana-data"].DriverOpts["device"]; dev != "/srv/myt/data/grafana-data" {
				t.Errorf("grafana volume at %q", dev)
			}
			// No bind mount hides a directory of the image's own init
			// scripts (timescaledb's extension install and tuning).
			for name, svc := range cfg.Services {
				for _, v := range svc.Volumes {
					if v.Type == "bind" && strings.TrimSuffix(v.Target, "/") == "/docker-entrypoint-initdb.d" {
						t.Errorf("service %s mounts over /docker-entrypoint-initdb.d, hiding the image's own scripts", name)
					}
				}
			}
			// Every service's log rotates: none can fill the disk.
			for name, svc := range cfg.Services {
				if l := svc.Logging; l.Driver != "json-file" || l.Options["max-size"] == "" || l.Options["max-file"] == "" {
					t.Errorf("service %s logs without rotation: %+v", name, l)
				}
			}
			// The test environment swaps in local images this way.
			env = []string{"MYT_IMAGE_RABBITMQ=myt-test/rabbitmq:1", "MYT_IMAGE_WORKER=myt-test/worker:1", "MYT_DATA_DIR=/tmp/myt-data"}
			out, err = runTool(t, dir, env, compose[0], args...)
			if err != nil {
				t.Fatalf("compose config with overrides: %v\n%s", err, out)
			}
			if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Services["rabbitmq"].Image != "myt-test/rabbitmq:1" || cfg.Services["worker"].Image != "myt-test/worker:1" {
				t.Errorf("overrides not applied: %+v", cfg.Services)
			}
			if dev := cfg.Volumes["grafana-data"].DriverOpts["device"]; dev != "/tmp/myt-data/grafana-data" {
				t.Errorf("MYT_DATA_DIR not applied: %q", dev)
			}
		})
	}
}
