package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SystemdHost is a systemd test host: a Debian 12 machine with systemd as
// PID 1, sshd, python3, sudo and its own Docker engine (Debian's docker.io
// with the Compose v2 plugin, vfs storage), run as a container of the
// "systemd" image on the private engine, with an empty data disk. Unlike
// an SSHHost it shares nothing with this machine but the kernel: Ansible's
// base, data_volume, docker and platform roles run on it as on a real
// server (units, nftables, mkfs and mount, docker compose), offline — the
// packages the roles install are already there.
//
// Reach it at Addr:Port (its 10.250.128.x bridge address) with the
// embedded SSHHost's Run, SSHArgs and Inventory. Ports that its platform
// publishes are on Addr, not on 127.0.0.1. Its engine starts with no
// images: LoadImages copies local ones in.
type SystemdHost struct {
	SSHHost
	// Container is the container's name on the private engine.
	Container string `json:"container"`
	// DataDevice is the data disk as the host sees it ("/dev/myt-data"), a
	// block device that holds nothing until a role formats it.
	DataDevice string `json:"data_device"`
	// LoopDevice is the loop device behind DataDevice on this machine.
	LoopDevice string `json:"loop_device"`
	// State is systemd's state when the host was handed out: "running",
	// or "degraded" when a unit failed at boot.
	State string `json:"state"`

	env *Env
}

// SystemdHost starts a fresh systemd test host (root, losetup and the
// "systemd" image are needed), waits until systemd finished booting and
// root logs in over SSH, and removes it — container, engine data and data
// disk — at the end of the test, printing its journal first if the test
// failed.
func (e *Env) SystemdHost(t testing.TB) *SystemdHost {
	t.Helper()
	Need(t, "root", os.Geteuid() == 0, "systemd test hosts attach a loop device; run the tests as root")
	_, err := exec.LookPath("losetup")
	Need(t, "losetup (util-linux)", err == nil, "apt-get install util-linux")
	image := e.Image("systemd")
	Need(t, "image systemd", image != "", "`scripts/testenv up` did not build it (see its output)")
	dir := filepath.Join(filepath.Dir(e.st.HostsDir), "systemd-hosts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n := -1
	for i := 1; i < 1024; i++ {
		if os.Mkdir(filepath.Join(dir, strconv.Itoa(i)), 0o700) == nil {
			n = i
			// lets `scripts/testenv up` remove hosts of dead test processes
			_ = os.WriteFile(filepath.Join(dir, strconv.Itoa(i), "owner"), []byte(strconv.Itoa(os.Getpid())), 0o600)
			break
		}
	}
	if n < 0 {
		t.Fatal("no free systemd test host number: run `scripts/testenv down && scripts/testenv up`")
	}
	h := &SystemdHost{env: e}
	t.Cleanup(func() {
		if t.Failed() && h.Container != "" {
			t.Logf("systemd host %s, journal (last 150 lines):\n%s", h.Container, h.journal())
		}
		if out, err := e.script(context.Background(), "systemd-host-down", strconv.Itoa(n)); err != nil {
			t.Errorf("remove systemd test host %d: %v: %s", n, err, out)
		}
	})
	out, err := e.script(context.Background(), "systemd-host-up", strconv.Itoa(n), image)
	if err != nil {
		t.Fatalf("start systemd test host %d: %v: %s", n, err, out)
	}
	if err := json.Unmarshal([]byte(lastLine(out)), h); err != nil {
		t.Fatalf("systemd test host %d: parse %q: %v", n, out, err)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "[testenv] ") {
			t.Log(strings.TrimPrefix(l, "[testenv] "))
		}
	}
	return h
}

// journal is the tail of the host's journal and its failed units, read
// through the engine (sshd may be what broke).
func (h *SystemdHost) journal() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := h.env.DockerCmd(ctx, "exec", h.Container, "sh", "-c",
		"systemctl --failed --no-pager; journalctl --no-pager -n 150").CombinedOutput()
	if err != nil {
		logs, _ := h.env.DockerCmd(ctx, "logs", "--tail", "60", h.Container).CombinedOutput()
		return fmt.Sprintf("%s(journal: %v)\ndocker logs:\n%s", out, err, logs)
	}
	return string(out)
}

// LoadImages copies images of the private engine (e.g. Env.Image("worker"),
// or the values of Env.ImageEnv) into the host's own engine: docker save
// here, docker load there, streamed through the private engine (docker
// exec). The references keep their names, so a compose file naming them
// finds them without a registry.
func (h *SystemdHost) LoadImages(t testing.TB, refs ...string) {
	t.Helper()
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	save := h.env.DockerCmd(ctx, append([]string{"save"}, refs...)...)
	load := h.env.DockerCmd(ctx, "exec", "-i", h.Container, "docker", "load")
	pr, pw := io.Pipe()
	var saveErr, loadOut bytes.Buffer
	save.Stdout, save.Stderr = pw, &saveErr
	load.Stdin, load.Stdout, load.Stderr = pr, &loadOut, &loadOut
	if err := load.Start(); err != nil {
		t.Fatalf("docker load in %s: %v", h.Container, err)
	}
	if err := save.Start(); err != nil {
		pw.Close()
		_ = load.Wait()
		t.Fatalf("docker save: %v", err)
	}
	saved := make(chan error, 1)
	go func() {
		err := save.Wait()
		pw.CloseWithError(err) // nil: load reads EOF
		saved <- err
	}()
	errLoad := load.Wait()
	pr.Close() // a load that failed early stops the save
	errSave := <-saved
	if errSave != nil {
		t.Fatalf("docker save %s: %v: %s", strings.Join(refs, " "), errSave, saveErr.String())
	}
	if errLoad != nil {
		t.Fatalf("docker load in %s: %v: %s", h.Container, errLoad, loadOut.String())
	}
}
