package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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

// newDeviceEnv is the API with devices wired as myt serve wires them,
// on a real SQLite database. Its platforms are designed, not running:
// devices are kept and applied to the broker by the first deploy.
func newDeviceEnv(t *testing.T) (*env, *sqlite.DeviceStore) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	store := sqlite.NewDeviceStore(db)
	guard := &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 4, Wait: 10 * time.Second}
	api := httpapi.New(httpapi.Config{Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin, Login: guard,
		Devices: &device.Service{Platforms: svc.Platforms, Store: store, Secrets: svc.Secrets}})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv}, store
}

// TestDevicesAPI: add, list, import and revoke through the API; the
// password is in the add's answer only and the store keeps its hash;
// another user's platform is 404 on every device route.
func TestDevicesAPI(t *testing.T) {
	e, store := newDeviceEnv(t)
	ada, bob, ids := e.setup()
	pid := itoa(ids["adaPlatform"])
	base := "/api/v1/platforms/" + pid + "/devices"

	status, body := e.raw("POST", base, ada, `{"name":"sensor-1","description":"kitchen"}`)
	if status != http.StatusCreated {
		t.Fatalf("add: %d %s", status, body)
	}
	var sec myt.DeviceSecret
	json.Unmarshal(body, &sec)
	if len(sec.Password) != 32 || sec.Device.Name != "sensor-1" || sec.Device.Description != "kitchen" {
		t.Fatalf("add answered %s", body)
	}
	ds, err := store.Devices(context.Background(), ids["adaPlatform"])
	if err != nil || len(ds) != 1 || ds[0].PasswordHash == "" || strings.Contains(ds[0].PasswordHash, sec.Password) {
		t.Fatalf("stored %+v, %v", ds, err)
	}
	if status, body := e.raw("POST", base, ada, `{"name":"sensor-1"}`); status != http.StatusConflict {
		t.Errorf("same name again: %d %s", status, body)
	}
	if status, body := e.raw("POST", base, ada, `{"name":"Sensor/1"}`); status != http.StatusBadRequest || !strings.Contains(string(body), `"field": "name"`) {
		t.Errorf("bad name: %d %s", status, body)
	}

	// Import: every bad line, with its number, and nothing kept.
	status, body = e.raw("POST", base+"/import", ada, `{"csv":"name,description\nsensor-2,hall\nsensor-1\nBAD\nsensor-2\n"}`)
	if status != http.StatusBadRequest {
		t.Fatalf("bad import: %d %s", status, body)
	}
	for _, want := range []string{`"field": "line 4"`, `"field": "line 5"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("bad import: %s lacks %s", body, want)
		}
	}
	status, body = e.raw("POST", base+"/import", ada, `{"csv":"sensor-2,hall\nsensor-1\n"}`)
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"field": "line 2"`) || !strings.Contains(string(body), "already has a device") {
		t.Errorf("import of an existing name: %d %s", status, body)
	}
	if ds, _ := store.Devices(context.Background(), ids["adaPlatform"]); len(ds) != 1 {
		t.Errorf("a refused import kept %d devices", len(ds)-1)
	}
	c := httpapi.NewClient(e.srv.URL, ada)
	got, err := c.ImportDevices(context.Background(), ids["adaPlatform"], []byte("sensor-2,hall\nsensor-3\n"))
	if err != nil || len(got) != 2 || got[0].Password == "" || got[0].Password == got[1].Password {
		t.Fatalf("import: %+v, %v", got, err)
	}

	list, err := c.Devices(context.Background(), ids["adaPlatform"])
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	_, raw := e.raw("GET", base, ada, "")
	if strings.Contains(string(raw), "password") || strings.Contains(string(raw), sec.Password) {
		t.Errorf("the list shows a password: %s", raw)
	}

	// Bob: not found, whatever he does.
	for _, rq := range [][3]string{{"GET", base, ""}, {"POST", base, `{"name":"x"}`}, {"POST", base + "/import", `{"csv":"x"}`},
		{"GET", base + "/sensor-1", ""}, {"DELETE", base + "/sensor-1", ""}} {
		if status, body := e.raw(rq[0], rq[1], bob, rq[2]); status != http.StatusNotFound {
			t.Errorf("bob %s %s: %d %s", rq[0], rq[1], status, body)
		}
	}

	d, err := c.RevokeDevice(context.Background(), ids["adaPlatform"], "sensor-1")
	if err != nil || d.Revoked == nil {
		t.Fatalf("revoke: %+v, %v", d, err)
	}
	if status, _ := e.raw("GET", base+"/sensor-1", ada, ""); status != http.StatusNotFound {
		t.Errorf("revoked device: %d, want 404", status)
	}
	// Its name may be given again.
	if status, body := e.raw("POST", base, ada, `{"name":"sensor-1"}`); status != http.StatusCreated {
		t.Errorf("name of a revoked device: %d %s", status, body)
	}
}
