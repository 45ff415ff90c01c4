package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/device"
	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
)

// TestDeviceCommands runs myt device add, list, import and revoke
// against a real API (SQLite; the platform is designed, so the devices
// wait for its deploy): the password is printed once, a bad CSV names
// its lines and adds nothing, a good one writes name,password to a new
// 0600 file.
func TestDeviceCommands(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin,
		Login:   &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 4, Wait: 10 * time.Second},
		Devices: &device.Service{Platforms: svc.Platforms, Store: sqlite.NewDeviceStore(db), Secrets: svc.Secrets}}))
	t.Cleanup(srv.Close)
	res, err := httpapi.NewClient(srv.URL, "").Setup(ctx, "ada", "correct horse battery", "cli")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := httpapi.NewClient(srv.URL, res.Token).CreatePlatform(ctx, []byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: home}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MYT_SERVER", srv.URL)
	t.Setenv("MYT_TOKEN", res.Token)
	t.Setenv("HOME", t.TempDir())

	out, err := runMyt(t, "device", "add", "home", "kitchen-1", "--description", "by the window")
	if err != nil || !strings.Contains(out, "user      kitchen-1") || !strings.Contains(out, "topic     myt/kitchen-1/...") || !strings.Contains(out, "once a deploy") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if _, err := runMyt(t, "device", "add", "home", "kitchen-1"); err == nil || !strings.Contains(err.Error(), "already has a device named kitchen-1") {
		t.Errorf("second add: %v", err)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("name,description\nhall-1\nHall 2\nkitchen-1\n"), 0o644)
	_, err = runMyt(t, "device", "import", "home", bad)
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("bad import: %v", err)
	}
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte("hall-1,hall\nhall-2\n"), 0o644)
	pwFile := filepath.Join(dir, "passwords.csv")
	if out, err := runMyt(t, "device", "import", "home", good, "-o", pwFile); err != nil || !strings.Contains(out, "2 devices added to home") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	st, err := os.Stat(pwFile)
	b, _ := os.ReadFile(pwFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err != nil || st.Mode().Perm() != 0o600 || len(lines) != 3 || lines[0] != "name,password" || !strings.HasPrefix(lines[1], "hall-1,") {
		t.Errorf("passwords file (%v, %v):\n%s", err, st.Mode(), b)
	}
	if _, err := runMyt(t, "device", "import", "home", good, "-o", pwFile); err == nil {
		t.Errorf("an import over an existing passwords file succeeded")
	}

	if _, err := runMyt(t, "device", "revoke", "home", "hall-2"); err != nil {
		t.Fatal(err)
	}
	out, err = runMyt(t, "device", "list", "home", "-o", "json")
	var ds []myt.Device
	if err != nil || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 2 || ds[0].Name != "hall-1" || ds[1].Name != "kitchen-1" {
		t.Errorf("list: %v\n%s", err, out)
	}
	if out, _ := runMyt(t, "device", "list", "home", "--all"); !strings.Contains(out, "hall-2") || !strings.Contains(out, "revoked") || !strings.Contains(out, "never seen") {
		t.Errorf("list --all:\n%s", out)
	}
}
