// Package testenv gives MyT's tests real services: containers from locally
// built images on the private Docker engine that `scripts/testenv up`
// starts, and SSH test hosts in network namespaces (10.250.0.0/16).
//
// A test asks for the environment with Require, then for a service:
//
//	e := testenv.Require(t)
//	mq := e.RabbitMQ(t) // a fresh broker, ready, removed at the end of t
//
// Outside CI a missing environment skips the test loudly; with CI=true it
// fails it. Need applies the same rule to any other optional dependency.
// Traffic goes only to 127.0.0.1 (published ports) and to the test hosts.
// See docs/testing.md.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// DefaultStatePath is where `scripts/testenv up` writes the state file;
// the environment variable MYT_TESTENV_STATE overrides it.
const DefaultStatePath = "/run/myt-testenv/state.json"

// Env is the running test environment (private engine + images), found via
// the state file written by `scripts/testenv up`.
type Env struct {
	st   state
	path string // of the state file
}

type state struct {
	DockerHost   string            `json:"docker_host"`
	DockerConfig string            `json:"docker_config"`
	DockerCLI    string            `json:"docker_cli"`
	Script       string            `json:"script"`
	HostsDir     string            `json:"hosts_dir"`
	Instance     int               `json:"instance"`
	Images       map[string]string `json:"images"`
	ImageEnv     map[string]string `json:"image_env"`
	Tools        map[string]Tool   `json:"tools"`
}

// Need skips t loudly when ok is false, or fails it when the environment
// variable CI is "true": under CI a missing dependency is a failure, never
// a silent skip. what names the dependency, why says how to get it.
func Need(t testing.TB, what string, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf("missing dependency %s: %s", what, why)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing dependency fails the test)")
		return
	}
	t.Skip("SKIP: " + msg)
}

// Require returns the running test environment, or skips t loudly (fails
// it under CI=true) when `scripts/testenv up` has not been run or its
// engine does not answer.
func Require(t testing.TB) *Env {
	t.Helper()
	e, err := Load()
	Need(t, "test environment", err == nil, fmt.Sprintf("%v; run `scripts/testenv up` as root", err))
	return e
}

// Load reads the state file and checks that the private engine answers.
// Tests use Require; Load is for code that wants the error.
func Load() (*Env, error) {
	path := os.Getenv("MYT_TESTENV_STATE")
	if path == "" {
		path = DefaultStatePath
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read test environment state: %w", err)
	}
	e := &Env{path: path}
	if err := json.Unmarshal(b, &e.st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if e.st.DockerCLI == "" {
		e.st.DockerCLI = "docker"
	}
	if err := ping(e.st.DockerHost); err != nil {
		return nil, fmt.Errorf("private docker engine %s: %w", e.st.DockerHost, err)
	}
	return e, nil
}

// ping asks the engine's /_ping endpoint over its unix socket.
func ping(host string) error {
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return fmt.Errorf("docker host %q is not a unix socket", host)
	}
	c := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := c.Get("http://docker/_ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping: %s", resp.Status)
	}
	return nil
}

// DockerHost is the private engine's address, e.g.
// "unix:///run/myt-testenv/docker.sock".
func (e *Env) DockerHost() string { return e.st.DockerHost }

// DockerEnv is what a process needs to use the private engine
// (DOCKER_HOST, DOCKER_CONFIG with the Compose plugin).
func (e *Env) DockerEnv() map[string]string {
	return map[string]string{"DOCKER_HOST": e.st.DockerHost, "DOCKER_CONFIG": e.st.DockerConfig}
}

// Environ is the environment a docker or docker compose command needs to
// use the private engine and the local images: DOCKER_HOST, DOCKER_CONFIG
// (where the compose plugin is) and the MYT_IMAGE_* overrides of the
// platform's compose file. Append it to os.Environ().
func (e *Env) Environ() []string {
	env := []string{"DOCKER_HOST=" + e.st.DockerHost, "DOCKER_CONFIG=" + e.st.DockerConfig}
	for k, v := range e.st.ImageEnv {
		env = append(env, k+"="+v)
	}
	return env
}

// ImageEnv maps the platform compose file's image variables
// (MYT_IMAGE_RABBITMQ, ...) to local image references. The map is a copy.
func (e *Env) ImageEnv() map[string]string { return maps.Clone(e.st.ImageEnv) }

// Image returns the local image reference for "base", "python",
// "rabbitmq", "mariadb", "postgres", "influxdb", "mongodb", "grafana",
// "worker" or "systemd" (systemd test hosts, see SystemdHost), or "" when
// that image was not built (the worker image is left out when
// ./cmd/myt does not build).
func (e *Env) Image(name string) string { return e.st.Images[name] }

// DockerCmd returns a docker CLI command aimed at the private engine.
// Secrets go in cmd.Env (docker run -e NAME takes the value from there),
// never in args.
func (e *Env) DockerCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.st.DockerCLI, args...)
	cmd.Env = append(os.Environ(), e.Environ()...)
	return cmd
}

// Docker runs the docker CLI against the private engine, fails the test on
// error (with docker's stderr) and returns its stdout.
func (e *Env) Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.docker(context.Background(), nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// docker runs the CLI with extra environment variables and a 5-minute cap.
func (e *Env) docker(ctx context.Context, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := e.DockerCmd(ctx, args...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		verb := strings.Join(args, " ")
		if len(verb) > 80 {
			verb = verb[:80] + "..."
		}
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", verb, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
