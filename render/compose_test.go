package render_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
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
					Image    string `yaml:"image"`
					MemLimit string `yaml:"mem_limit"`
					Volumes  []struct {
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
			// Every service has the memory limit Compose resolved from
			// the template (bytes).
			for name, svc := range cfg.Services {
				if n, err := strconv.ParseInt(svc.MemLimit, 10, 64); err != nil || n < 64<<20 {
					t.Errorf("service %s: mem_limit %q", name, svc.MemLimit)
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

// TestMemoryLimitsFit: for every target and size, every service has a
// memory limit, the database the largest, and the limits (the worker's
// once per replica) leave the host at least a fifth of the size's memory;
// a design with more workers than fit is refused, naming the field.
func TestMemoryLimitsFit(t *testing.T) {
	for _, c := range designs(t) {
		for _, size := range myt.Sizes {
			for _, workers := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s-%s-%d", c.name, size, workers), func(t *testing.T) {
					d := *c.d
					p := d.Spec.Target.Provider
					d.Spec.Target.Size, d.Spec.Processing.Workers = size, workers
					cf := loadCompose(t, mustRender(t, &d))
					host := render.HostMemoryMiB[size]
					switch p {
					case myt.ProviderSSH, myt.ProviderLocal:
						host = render.DefaultHostMemoryMiB
					case myt.ProviderOpenStack: // m1.medium and m1.large
						host = map[string]int{"small": 2048, "medium": 4096, "large": 8192}[size]
					}
					sum, most, mostSvc := 0, 0, ""
					for name, svc := range cf.Services {
						mib, err := strconv.Atoi(strings.TrimSuffix(svc.MemLimit, "m"))
						if err != nil || !strings.HasSuffix(svc.MemLimit, "m") || mib < 128 {
							t.Errorf("%s: mem_limit %q", name, svc.MemLimit)
						}
						if mib > most {
							most, mostSvc = mib, name
						}
						if name == "worker" {
							mib *= workers
						}
						sum += mib
					}
					if mostSvc != d.Spec.Database.Kind {
						t.Errorf("%s has the largest limit (%d MiB), not the database", mostSvc, most)
					}
					if sum > host*4/5 {
						t.Errorf("limits add up to %d MiB on a %d MiB host", sum, host)
					}
				})
			}
		}
	}
	d := *designNamed(t, "aws-timescaledb")
	d.Spec.Target.Size, d.Spec.Processing.Workers = "small", 8
	if _, err := render.Render(context.Background(), &d, testOptions(&d)); err == nil || !strings.Contains(err.Error(), "spec.processing.workers") {
		t.Errorf("8 workers on a small server: %v", err)
	}
}
