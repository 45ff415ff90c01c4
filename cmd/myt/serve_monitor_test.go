package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/sqlite"
)

// TestServeMonitorsRunningPlatforms: `myt serve` polls the running
// platforms of its database at --monitor-interval and records their
// history (here a local platform with nothing of it listening: its
// components are recorded, up or down), and stops cleanly with the
// monitor running; the alert engine sees the polls (the platform's
// default rules are created). A too short interval is refused, naming the flag.
func TestServeMonitorsRunningPlatforms(t *testing.T) {
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "data")
	quiet := slog.New(slog.DiscardHandler)
	db, err := openStore(ctx, data, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	if _, err := svc.Users.CreateUser(ctx, myt.UserCreate{Username: "ada", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Users.Authenticate(ctx, "ada", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: shed}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Platforms.CreatePlatform(myt.NewContextWithAuth(ctx, a), d)
	if err != nil {
		t.Fatal(err)
	}
	rev := 1
	if err := sqlite.NewJobStore(db).SetPlatformDeployment(ctx, p.ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &rev}); err != nil {
		t.Fatal(err)
	}

	startServe(t, serveConfig{Data: data, MonitorInterval: time.Second})
	store := sqlite.NewMonitorStore(db)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, ok, err := store.Lookup(ctx, p.ID, monitor.UpPrefix+monitor.ComponentWorker)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve recorded no poll of the running platform in 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The alert engine sees the polls: the platform got its default rules.
	alerts := sqlite.NewAlertStore(db)
	for {
		rules, err := alerts.Rules(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) == len(alert.Defaults()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve's alert engine created %d rules in 15 s, want the %d defaults", len(rules), len(alert.Defaults()))
		}
		time.Sleep(100 * time.Millisecond)
	}

	err = runServe(ctx, serveConfig{Data: filepath.Join(t.TempDir(), "d"), MonitorInterval: 10 * time.Millisecond, LogFormat: "text", LogLevel: "info", TokenTTL: time.Hour}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "--monitor-interval") {
		t.Errorf("a 10ms monitor interval: %v, want an error naming --monitor-interval", err)
	}
	if def := newServeCmd().Flags().Lookup("monitor-interval").DefValue; def != "30s" {
		t.Errorf("--monitor-interval defaults to %s, want 30s", def)
	}
}
