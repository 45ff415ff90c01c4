package deploy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/monitor"
)

// TestSetAuthorizedKey edits a real sshd's authorized_keys over SSH: the
// monitor key's line is added once, replaced when the workers change,
// and removed; the other lines (the admin's key, another platform's
// monitor line) stay byte for byte, and the admin still logs in.
func TestSetAuthorizedKey(t *testing.T) {
	e := testenv.Require(t)
	h := e.SSHHost(t)
	// The test host's sshd reads this file, and tells its sessions so
	// (MYT_AUTHORIZED_KEYS, scripts/testenv).
	file := filepath.Join(filepath.Dir(h.KeyFile), "authorized_keys")
	other := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDl4WlBq8bZkV8ud3Ar0lhn0OUSs6aZXIuR1Ts8cvDyb myt-monitor:platform-12"
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(other + "\n")
	f.Close()
	original, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(h.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := (sshHost{Host: h.Addr, Port: h.Port, User: h.User, Key: admin, KnownHosts: h.KnownHosts}).dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	comment := monitorKeyComment(1)
	line := func(workers int) string {
		l, err := monitor.AuthorizedKey(signer.PublicKey(), workers, "/srv/myt/data", comment)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	set := func(l string, wantChanged bool) string {
		t.Helper()
		changed, err := setAuthorizedKey(context.Background(), c, authorizedKeys, comment, l)
		if err != nil {
			t.Fatal(err)
		}
		if changed != wantChanged {
			t.Errorf("set %.40q: changed %v, want %v", l, changed, wantChanged)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := set(line(1), true); got != string(original)+line(1)+"\n" {
		t.Errorf("after install:\n%s", got)
	}
	set(line(1), false)
	got := set(line(2), true)
	if got != string(original)+line(2)+"\n" || !strings.Contains(got, `permitopen="127.0.0.1:18081"`) {
		t.Errorf("after a second worker:\n%s", got)
	}
	if got := set("", true); got != string(original) {
		t.Errorf("after removal:\n%s\nwant\n%s", got, original)
	}
	set("", false)
	h.Run(t, "true") // the admin's key still logs in
}
