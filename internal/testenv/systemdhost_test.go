package testenv_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/internal/testenv"
)

// TestSystemdHost checks what the roles rely on: systemd is PID 1 and
// booted, root logs in by key with strict host checking, the host has its
// own Docker engine with Compose v2 and vfs storage, the data disk is an
// empty block device it may format and mount, nftables tables load, and
// images copied in with LoadImages run with a port published on the
// host's own address.
func TestSystemdHost(t *testing.T) {
	e := testenv.Require(t)
	h := e.SystemdHost(t)
	if !strings.HasPrefix(h.Addr, "10.250.") || h.Port != 22 || h.User != "root" || h.KeyFile == "" || h.KnownHosts == "" ||
		h.Container == "" || h.DataDevice == "" || !strings.HasPrefix(h.LoopDevice, "/dev/loop") {
		t.Fatalf("systemd host = %+v: a field the script prints was not read", *h)
	}
	if h.State != "running" {
		t.Errorf("systemd state %q, want running", h.State)
	}
	if out := h.Run(t, "ps -o comm= -p 1; systemctl is-system-running"); out != "systemd\nrunning\n" {
		t.Errorf("PID 1 and system state: %q", out)
	}
	if out := h.Run(t, "docker compose version --short; docker info --format '{{.Driver}}'"); !strings.HasPrefix(out, "2.") || !strings.HasSuffix(out, "\nvfs\n") {
		t.Errorf("compose version and storage driver: %q", out)
	}
	// blkid -p exits 2 when the device holds nothing.
	if out := h.Run(t, fmt.Sprintf("test -b %[1]s; blkid -p %[1]s; echo $?", h.DataDevice)); out != "2\n" {
		t.Errorf("data device %s is not an empty block device: %q", h.DataDevice, out)
	}
	h.Run(t, fmt.Sprintf("mkfs.ext4 -q %s && mkdir -p /mnt/d && mount %[1]s /mnt/d && touch /mnt/d/x && umount /mnt/d", h.DataDevice))
	h.Run(t, "nft add table inet myt_probe && nft delete table inet myt_probe")

	py := e.Image("python")
	testenv.Need(t, "image python", py != "", "scripts/testenv up did not build it")
	h.LoadImages(t, py)
	token := fmt.Sprintf("myt-%d", time.Now().UnixNano())
	h.Run(t, fmt.Sprintf("docker run -d --name web -p 8000:8000 -w /srv %s sh -c 'printf %s > index.html && exec python3 -m http.server 8000'", py, token))
	url := fmt.Sprintf("http://%s:8000/", h.Addr)
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != token {
				t.Fatalf("%s answered %q, want %q", url, b, token)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v", url, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
