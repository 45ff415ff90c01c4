package myt

import (
	"context"
	"io"
	"time"
)

// Job kinds of a platform's data (see JobKinds).
const (
	// JobBackup dumps the platform's database (natively, inside its
	// container) into MyT's data directory.
	JobBackup = "backup"
	// JobRestore streams a stored backup into a running platform of the
	// same database kind, replacing its data.
	JobRestore = "restore"
)

// Backup states. A backup is listed as good only in BackupOK: written
// whole, synced, renamed into place and its checksum verified by reading
// it back.
const (
	BackupRunning = "running"
	BackupOK      = "ok"
	BackupFailed  = "failed"
)

// Backup is one native dump of a platform's database, kept by MyT.
type Backup struct {
	ID         int64  `json:"id"`
	PlatformID int64  `json:"platformId"`
	Platform   string `json:"platform"`
	// JobID is the backup job (or the destroy whose final backup it is).
	JobID int64 `json:"jobId"`
	// Kind is the database kind (mysql, timescaledb, mongodb, influxdb):
	// a backup restores into a platform of the same kind.
	Kind  string `json:"kind"`
	State string `json:"state"`
	// Size is the stored file's size in bytes; SHA256 its checksum (hex),
	// of the stored bytes (encrypted ones when Encrypted).
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`
	Encrypted bool   `json:"encrypted"`
	// Format says what the dump is ("pg_dump custom", "mysqldump SQL",
	// "mongodump archive", "influx backup tar").
	Format   string        `json:"format"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	// Reason is why it was taken: "manual", "schedule" or "before destroy".
	Reason string `json:"reason"`
	// Error says why a failed backup failed.
	Error string `json:"error,omitempty"`
}

// Good reports whether the backup can be downloaded and restored.
func (b *Backup) Good() bool { return b.State == BackupOK }

// BackupSchedule runs a platform's backups on their own: every day at
// Hour:Minute UTC, or every hour at Minute when Hourly; after each good
// backup only the Keep newest good ones are kept (0 keeps all).
type BackupSchedule struct {
	PlatformID int64 `json:"platformId"`
	Enabled    bool  `json:"enabled"`
	Hourly     bool  `json:"hourly"`
	Hour       int   `json:"hour"`
	Minute     int   `json:"minute"`
	Keep       int   `json:"keep"`
	// Unavailable says why MyT cannot run this platform's schedule (ssh
	// and cloud platforms need the owner's credential, which MyT does
	// not keep open); empty when it can.
	Unavailable string `json:"unavailable,omitempty"`
}

// Next returns the first scheduled time after t.
func (s *BackupSchedule) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Minute)
	if s.Hourly {
		n := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), s.Minute, 0, 0, time.UTC)
		if !n.After(t) {
			n = n.Add(time.Hour)
		}
		return n
	}
	n := time.Date(t.Year(), t.Month(), t.Day(), s.Hour, s.Minute, 0, 0, time.UTC)
	if !n.After(t) {
		n = n.AddDate(0, 0, 1)
	}
	return n
}

// BackupService lists, reads and removes a user's backups, and keeps
// backup schedules. Like PlatformService it acts on the principal's own
// platforms only: another user's backup is ENOTFOUND. Backups are taken
// and restored by jobs (JobService.StartJob with JobBackup, JobRestore).
type BackupService interface {
	// FindBackups lists the platform's backups, newest first, failed
	// ones included (they are never Good).
	FindBackups(ctx context.Context, platformID int64) ([]*Backup, error)
	FindBackupByID(ctx context.Context, id int64) (*Backup, error)
	// OpenBackup streams a good backup's dump, decrypted, checking its
	// checksum as it goes: the reader's last Read fails when the file no
	// longer matches. EINVALID for a backup that is not good.
	OpenBackup(ctx context.Context, id int64) (*Backup, io.ReadCloser, error)
	// DeleteBackup removes the backup and its file. ECONFLICT while a job
	// writes or reads it.
	DeleteBackup(ctx context.Context, id int64) error
	BackupSchedule(ctx context.Context, platformID int64) (*BackupSchedule, error)
	SetBackupSchedule(ctx context.Context, s *BackupSchedule) (*BackupSchedule, error)
}
