package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/device"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
	"github.com/myt-iot/myt/web"
)

// newDevicesEnv is the UI with devices wired as myt serve wires them
// (without a broker: its platforms are not running, so devices are only
// kept, as they are until a deploy applies them).
func newDevicesEnv(t *testing.T) (*env, *sqlite.DeviceStore) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	store := sqlite.NewDeviceStore(db)
	runner, err := deploy.New(context.Background(), deploy.Config{Jobs: sqlite.NewJobStore(db), States: sqlite.NewStateStore(db), Secrets: svc.Secrets,
		Platforms: svc.Platforms, Credentials: svc.Credentials, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	h, err := web.New(web.Config{
		Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin,
		Jobs: runner, Connections: runner,
		Logger:  slog.New(slog.DiscardHandler),
		Login:   &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 4, Wait: 10 * time.Second},
		Devices: &device.Service{Platforms: svc.Platforms, Store: store, Secrets: svc.Secrets},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, db: db, svc: svc}, store
}

// TestDevicesPage: add a device in the form (its page shows the password
// once and a quickstart with its own user and topic), see it listed
// without the password, import a fleet (bad lines named, nothing added;
// then the name,password CSV as a download), revoke; another user gets
// 404 on all of it.
func TestDevicesPage(t *testing.T) {
	e, store := newDevicesEnv(t)
	ada := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: greenhouse}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Platforms.CreatePlatform(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlite.NewJobStore(e.db).SetPlatformDeployment(context.Background(), p.ID, myt.PlatformDeployment{Status: myt.StatusDesigned, SetEndpoints: true,
		Endpoints: &myt.Endpoints{Address: "192.0.2.7", MQTTS: "mqtts://192.0.2.7:8883", DeviceUser: "myt-device", TopicPrefix: "myt"}}); err != nil {
		t.Fatal(err)
	}
	base := "/platforms/" + itoa(p.ID) + "/devices"

	if r := ada.get(base); r.status != 200 || !strings.Contains(r.body, "No devices yet") {
		t.Fatalf("empty page: %d\n%s", r.status, r.body)
	}
	r := ada.post(base, url.Values{"name": {"sensor-7"}, "description": {"north wall"}})
	if r.status != 200 || !strings.Contains(r.body, `data-testid="device-password"`) {
		t.Fatalf("add: %d\n%s", r.status, r.body)
	}
	ds, _ := store.Devices(context.Background(), p.ID)
	pw := r.body[strings.Index(r.body, `data-testid="device-password">`)+len(`data-testid="device-password">`):]
	pw = pw[:strings.Index(pw, "<")]
	if len(ds) != 1 || len(pw) != 32 {
		t.Fatalf("stored %v; password %q", ds, pw)
	}
	for _, want := range []string{"mosquitto_pub -h 192.0.2.7 -p 8883 --cafile ca.crt", "-u sensor-7 -P " + pw, "-t myt/sensor-7/data",
		`client_id=&#34;sensor-7&#34;`, `username_pw_set(&#34;sensor-7&#34;, &#34;` + pw + `&#34;)`, `href="/platforms/` + itoa(p.ID) + `/ca.crt"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the added device's page lacks %q", want)
		}
	}
	// The device's page later: quickstart, never the password.
	if r := ada.get(base + "/sensor-7"); r.status != 200 || strings.Contains(r.body, pw) || !strings.Contains(r.body, `&#34;$MYT_DEVICE_PASSWORD&#34;`) {
		t.Errorf("device page: %d, shows the password: %v", r.status, strings.Contains(r.body, pw))
	}
	if r := ada.get(base); !strings.Contains(r.body, "sensor-7") || !strings.Contains(r.body, "north wall") || strings.Contains(r.body, pw) {
		t.Errorf("list:\n%s", r.body)
	}
	if r := ada.post(base, url.Values{"name": {"sensor-7"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "an active device has this name") {
		t.Errorf("same name: %d", r.status)
	}
	if r := ada.post(base, url.Values{"name": {"Sensor 8"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "lower-case") {
		t.Errorf("bad name: %d", r.status)
	}

	// Import: the bad lines, numbered; nothing added.
	ada.get(base)
	r = ada.post(base+"/import", url.Values{"csv": {"name\nok-1\nBad Line\nsensor-7\nok-1\n"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad import: %d", r.status)
	}
	for _, want := range []string{"line 3", "line 5", "Nothing was imported"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("bad import page lacks %q", want)
		}
	}
	if ds, _ := store.Devices(context.Background(), p.ID); len(ds) != 1 {
		t.Errorf("a refused import added %d devices", len(ds)-1)
	}
	r = ada.post(base+"/import", url.Values{"csv": {"sensor-7,dup\n"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "already has a device") {
		t.Errorf("import of an existing name: %d", r.status)
	}
	r = ada.post(base+"/import", url.Values{"csv": {"ok-1,a\nok-2\n"}})
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("import: %d %v\n%s", r.status, r.header, r.body)
	}
	lines := strings.Split(strings.TrimSpace(r.body), "\n")
	if len(lines) != 3 || lines[0] != "name,password" || !strings.HasPrefix(lines[1], "ok-1,") || !strings.HasPrefix(lines[2], "ok-2,") {
		t.Errorf("import CSV:\n%s", r.body)
	}

	// Bob sees none of it.
	bob := e.member(ada, "bob", "bob password 1")
	bob.get("/")
	for _, path := range []string{base, base + "/sensor-7"} {
		if r := bob.get(path); r.status != 404 {
			t.Errorf("bob GET %s: %d", path, r.status)
		}
	}
	for _, path := range []string{base, base + "/import", base + "/sensor-7/revoke"} {
		if r := bob.post(path, url.Values{"name": {"x"}, "csv": {"x"}}); r.status != 404 {
			t.Errorf("bob POST %s: %d", path, r.status)
		}
	}
	if ds, _ := store.Devices(context.Background(), p.ID); len(ds) != 3 || ds[0].Revoked != nil {
		t.Errorf("after bob: %d devices", len(ds))
	}

	ada.get(base)
	if r := ada.post(base+"/sensor-7/revoke", nil); r.status != http.StatusSeeOther || r.location != base+"?ok=revoked" {
		t.Fatalf("revoke: %d %s", r.status, r.location)
	}
	if r := ada.get(base + "?ok=revoked"); !strings.Contains(r.body, "The device is revoked") || !strings.Contains(r.body, `data-testid="revoked"`) {
		t.Errorf("after revoke:\n%s", r.body)
	}
}
