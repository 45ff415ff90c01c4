package deploy

import (
	"context"
	"time"

	"github.com/myt-iot/myt"
)

// ScheduleStore finds the backup schedules that are due
// (sqlite.BackupStore) and the running platforms with their owners
// (sqlite.MonitorStore).
type ScheduleStore interface {
	// DueSchedules returns the schedules due at now and marks them run.
	DueSchedules(ctx context.Context, now time.Time) ([]*myt.BackupSchedule, error)
}

// RunBackupSchedules starts the scheduled backups of local platforms once
// a minute until ctx ends. A scheduled backup runs as a job of the
// platform's owner (StartedBy "schedule"), with no credential: ssh and
// cloud platforms cannot take one (scheduleUnavailable). owner returns a
// platform's owning user id.
func (r *Runner) RunBackupSchedules(ctx context.Context, due ScheduleStore, owner func(ctx context.Context, platformID int64) (int64, error)) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		r.runDue(ctx, due, owner, r.cfg.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Runner) runDue(ctx context.Context, due ScheduleStore, owner func(context.Context, int64) (int64, error), now time.Time) {
	scs, err := due.DueSchedules(ctx, now)
	if err != nil {
		r.log.Error("backup schedules", "err", err)
		return
	}
	for _, sc := range scs {
		uid, err := owner(ctx, sc.PlatformID)
		if err != nil {
			r.log.Error("scheduled backup: platform owner", "platform", sc.PlatformID, "err", err)
			continue
		}
		uctx := myt.NewContextWithAuth(ctx, &myt.Auth{User: &myt.User{ID: uid, Username: "schedule"}})
		p, err := r.cfg.Platforms.FindPlatformByID(uctx, sc.PlatformID)
		if err != nil {
			continue
		}
		if why := scheduleUnavailable(p); why != "" {
			r.log.Warn("scheduled backup skipped", "platform", p.Name, "why", why)
			continue
		}
		j, err := r.StartJob(uctx, p.ID, myt.JobRequest{Kind: myt.JobBackup, Reason: "schedule"})
		if err != nil {
			r.log.Warn("scheduled backup not started", "platform", p.Name, "err", err)
			continue
		}
		r.log.Info("scheduled backup started", "platform", p.Name, "job", j.ID)
	}
}
