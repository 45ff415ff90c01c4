package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/sqlite"
)

// TestBackupStore: a backup is listed running until it is finished; one
// left running by a stopped server becomes failed at the next start
// (FailRunning) and cannot then be finished as ok.
func TestBackupStore(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	p, err := f.svc.Platforms.CreatePlatform(ctx, localDesign("home"))
	if err != nil {
		t.Fatal(err)
	}
	s := sqlite.NewBackupStore(f.db)
	good := &myt.Backup{PlatformID: p.ID, JobID: 4, Kind: "influxdb", Format: "tar", Reason: "manual"}
	if err := s.CreateBackup(ctx, good, "backups/1/job-4.tar"); err != nil {
		t.Fatal(err)
	}
	cut := &myt.Backup{PlatformID: p.ID, JobID: 5, Kind: "influxdb", Format: "tar", Reason: "schedule", Encrypted: true}
	if err := s.CreateBackup(ctx, cut, "backups/1/job-5.tar"); err != nil {
		t.Fatal(err)
	}
	good.State, good.Size, good.SHA256, good.Duration = myt.BackupOK, 1234, "abcd", 1500*time.Millisecond
	if err := s.FinishBackup(ctx, good); err != nil {
		t.Fatal(err)
	}
	files, err := s.FailRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"backups/1/job-5.tar"}, files); diff != "" {
		t.Errorf("FailRunning files (-want +got):\n%s", diff)
	}
	cut.State = myt.BackupOK
	if err := s.FinishBackup(ctx, cut); myt.ErrorCode(err) != myt.ECONFLICT {
		t.Errorf("finishing a backup a restart marked failed: %v, want ECONFLICT", err)
	}
	list, err := s.Backups(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != cut.ID || list[0].State != myt.BackupFailed || list[0].Good() || list[0].Error == "" || !list[0].Encrypted {
		t.Errorf("newest: %+v, want the cut one, failed with a reason", list[0])
	}
	if b := list[1]; !b.Good() || b.Size != 1234 || b.SHA256 != "abcd" || b.Duration != 1500*time.Millisecond || b.Platform != "home" {
		t.Errorf("good one: %+v", b)
	}
	file, err := s.DeleteBackup(ctx, good.ID)
	if err != nil || file != "backups/1/job-4.tar" {
		t.Errorf("delete: %q %v", file, err)
	}
	if _, _, err := s.Backup(ctx, good.ID); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("deleted backup: %v, want ENOTFOUND", err)
	}
	if uid, err := s.PlatformOwner(ctx, p.ID); err != nil || uid != p.UserID {
		t.Errorf("owner: %d %v, want %d", uid, err, p.UserID)
	}
	// A platform with a good backup is not deleted (the backup would go
	// with it); once its backups are deleted, it is.
	again := &myt.Backup{PlatformID: p.ID, JobID: 6, Kind: "influxdb"}
	if err := s.CreateBackup(ctx, again, "backups/1/job-6.tar"); err != nil {
		t.Fatal(err)
	}
	again.State = myt.BackupOK
	if err := s.FinishBackup(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Platforms.DeletePlatform(ctx, p.ID); myt.ErrorCode(err) != myt.ECONFLICT {
		t.Errorf("delete a platform with a good backup: %v, want ECONFLICT", err)
	}
	if _, err := s.DeleteBackup(ctx, again.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Platforms.DeletePlatform(ctx, p.ID); err != nil {
		t.Errorf("delete the platform once its good backups are gone: %v", err)
	}
}

// TestBackupSchedules: a schedule is due once per period, counted from
// when it was first seen.
func TestBackupSchedules(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	p, err := f.svc.Platforms.CreatePlatform(ctx, localDesign("home"))
	if err != nil {
		t.Fatal(err)
	}
	s := sqlite.NewBackupStore(f.db)
	sc, err := s.Schedule(ctx, p.ID)
	if err != nil || sc.Enabled {
		t.Fatalf("default schedule: %+v %v", sc, err)
	}
	if err := s.SetSchedule(ctx, &myt.BackupSchedule{PlatformID: p.ID, Enabled: true, Hourly: true, Minute: 15, Keep: 2}); err != nil {
		t.Fatal(err)
	}
	at := func(hh, mm int) time.Time { return time.Date(2026, 12, 2, hh, mm, 0, 0, time.UTC) }
	due := func(now time.Time) int {
		t.Helper()
		scs, err := s.DueSchedules(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		return len(scs)
	}
	for _, c := range []struct {
		now  time.Time
		want int
	}{{at(10, 0), 0}, {at(10, 14), 0}, {at(10, 15), 1}, {at(10, 16), 0}, {at(11, 14), 0}, {at(11, 20), 1}, {at(11, 21), 0}} {
		if got := due(c.now); got != c.want {
			t.Errorf("%s: %d due, want %d", c.now.Format("15:04"), got, c.want)
		}
	}
}
