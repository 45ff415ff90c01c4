package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
	"github.com/myt-iot/myt/web"
)

// TestBackupsPage: the platform page links its backups page, which shows
// an empty list, says a restore needs the platform running, and saves a
// schedule (a bad minute is marked next to its input).
func TestBackupsPage(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	docker := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(docker, []byte(fakeDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	store := sqlite.NewBackupStore(db)
	runner, err := deploy.New(ctx, deploy.Config{Jobs: sqlite.NewJobStore(db), States: sqlite.NewStateStore(db), Secrets: svc.Secrets,
		Platforms: svc.Platforms, Credentials: svc.Credentials, Backups: store, Tools: deploy.Tools{Docker: docker}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	h, err := web.New(web.Config{
		Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin,
		Jobs: runner, Connections: runner, Code: runner, Backups: runner, Logger: slog.New(slog.DiscardHandler),
		Login: &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 4, Wait: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &alertsEnv{env: &env{t: t, srv: srv, db: db, svc: svc}}
	ada := e.setup()
	p := e.platform("ada", adminPW, "vault")
	base := "/platforms/" + itoa(p.ID) + "/backups"
	if r := ada.get("/platforms/" + itoa(p.ID)); !strings.Contains(r.body, `href="`+base+`"`) {
		t.Errorf("the platform page does not link its backups page")
	}
	r := ada.get(base)
	if r.status != 200 || !strings.Contains(r.body, "No backups yet") || !strings.Contains(r.body, "A restore goes into a running platform") || strings.Contains(r.body, "Back up now") {
		t.Fatalf("backups page of a platform never deployed: %d\n%s", r.status, r.body)
	}
	r = ada.post(base+"/schedule", url.Values{"enabled": {"1"}, "every": {"day"}, "hour": {"3"}, "minute": {"75"}, "keep": {"5"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "A whole number from 0 to 59") || !strings.Contains(r.body, `id="f-minute"`) {
		t.Errorf("a schedule at minute 75: %d", r.status)
	}
	r = ada.post(base+"/schedule", url.Values{"enabled": {"1"}, "every": {"day"}, "hour": {"3"}, "minute": {"30"}, "keep": {"5"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, base+"?ok=schedule") {
		t.Fatalf("save the schedule: %d %s\n%s", r.status, r.location, r.body)
	}
	if r = ada.get(r.location); !strings.Contains(r.body, "The schedule was saved") || !strings.Contains(r.body, `value="30"`) {
		t.Errorf("after saving the schedule the page lacks the notice or the minute")
	}
	sc, err := store.Schedule(ctx, p.ID)
	if err != nil || !sc.Enabled || sc.Hourly || sc.Hour != 3 || sc.Minute != 30 || sc.Keep != 5 {
		t.Errorf("stored schedule: %+v %v", sc, err)
	}
}
