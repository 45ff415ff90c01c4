package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SSHHost is an SSH test host: a network namespace with its own address in
// 10.250.0.0/16 and an sshd inside, reachable from the host. It shares the
// host's files, so its sessions use the private Docker engine (sshd sets
// DOCKER_HOST and DOCKER_CONFIG for them) and `docker compose up -d` run
// there deploys onto that engine. Ports such a deploy publishes are in the
// host's network namespace: tests reach them on 127.0.0.1.
//
// The JSON tags match what `scripts/testenv host-up` prints.
type SSHHost struct {
	Name       string `json:"name"`        // network namespace, e.g. myt-th3
	Addr       string `json:"addr"`        // the host's address, e.g. 10.250.0.14
	HostAddr   string `json:"host_addr"`   // the other end of its link, in the host's namespace
	Port       int    `json:"port"`        // 22
	User       string `json:"user"`        // root
	KeyFile    string `json:"key_file"`    // private key (0600) that logs in as User
	KnownHosts string `json:"known_hosts"` // known_hosts file holding Addr's host key
}

// SSHHost starts a fresh SSH test host (root and the ip and sshd commands
// are needed) and removes it at the end of the test.
func (e *Env) SSHHost(t testing.TB) *SSHHost {
	t.Helper()
	Need(t, "root", os.Geteuid() == 0, "SSH test hosts are network namespaces; run the tests as root")
	_, err := exec.LookPath("ip")
	Need(t, "ip (iproute2)", err == nil, "apt-get install iproute2, or run `scripts/testenv up`")
	if err := os.MkdirAll(e.st.HostsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	n := -1
	for i := 1; i < 1024; i++ { // 0 belongs to `scripts/testenv up`
		dir := filepath.Join(e.st.HostsDir, strconv.Itoa(i))
		if os.Mkdir(dir, 0o700) == nil {
			n = i
			// lets `scripts/testenv up` remove hosts of dead test processes
			_ = os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o600)
			break
		}
	}
	if n < 0 {
		t.Fatal("no free SSH test host number: run `scripts/testenv down && scripts/testenv up`")
	}
	t.Cleanup(func() {
		if out, err := e.script(context.Background(), "host-down", strconv.Itoa(n)); err != nil {
			t.Errorf("remove SSH test host %d: %v: %s", n, err, out)
		}
	})
	out, err := e.script(context.Background(), "host-up", strconv.Itoa(n))
	if err != nil {
		t.Fatalf("start SSH test host %d: %v: %s", n, err, out)
	}
	var h SSHHost
	if err := json.Unmarshal([]byte(lastLine(out)), &h); err != nil {
		t.Fatalf("SSH test host %d: parse %q: %v", n, out, err)
	}
	return &h
}

// script runs scripts/testenv with args.
func (e *Env) script(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{e.st.Script}, args...)...)
	cmd.Env = append(os.Environ(), "MYT_TESTENV_INSTANCE="+strconv.Itoa(e.st.Instance))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// SSHArgs are the ssh options that log in to h without prompts and with
// strict host key checking.
func (h *SSHHost) SSHArgs() []string {
	return []string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + h.KnownHosts,
		"-o", "ConnectTimeout=5", "-i", h.KeyFile, "-p", strconv.Itoa(h.Port)}
}

// Run runs a shell command on h over ssh, fails the test on error and
// returns its stdout.
func (h *SSHHost) Run(t testing.TB, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", append(h.SSHArgs(), h.User+"@"+h.Addr, command)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh %s %q: %v: %s", h.Addr, command, err, stderr.String())
	}
	return stdout.String()
}

// Inventory writes an Ansible inventory with h as the one host of group
// "all" (named alias) into dir and returns its path.
func (h *SSHHost) Inventory(t testing.TB, dir, alias string) string {
	t.Helper()
	line := fmt.Sprintf("%s ansible_host=%s ansible_port=%d ansible_user=%s ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3 ansible_ssh_common_args='-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s'\n",
		alias, h.Addr, h.Port, h.User, h.KeyFile, h.KnownHosts)
	p := filepath.Join(dir, "inventory.ini")
	if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
