package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/myt-iot/myt"
)

// BackupStore keeps the record of each backup (myt.Backup) and the
// platforms' backup schedules. Like JobStore it acts for the server:
// callers check ownership first. The files themselves live in the data
// directory; File is their path relative to it.
type BackupStore struct{ db *DB }

// NewBackupStore returns the backup store of db.
func NewBackupStore(db *DB) *BackupStore { return &BackupStore{db: db} }

const backupColumns = `b.id, b.platform_id, p.name, b.job_id, b.kind, b.state, b.size, b.sha256, b.encrypted, b.format, b.file,
	b.reason, b.started, b.duration_ms, b.error`

func scanBackup(row interface{ Scan(...any) error }) (*myt.Backup, string, error) {
	b := &myt.Backup{}
	var file string
	var started, ms int64
	err := row.Scan(&b.ID, &b.PlatformID, &b.Platform, &b.JobID, &b.Kind, &b.State, &b.Size, &b.SHA256, &b.Encrypted, &b.Format, &file,
		&b.Reason, &started, &ms, &b.Error)
	if err != nil {
		return nil, "", err
	}
	b.Started, b.Duration = fromMS(started), time.Duration(ms)*time.Millisecond
	return b, file, nil
}

// CreateBackup records a backup that starts now, in state running, to be
// written to file; it sets b.ID, b.State and b.Started.
func (s *BackupStore) CreateBackup(ctx context.Context, b *myt.Backup, file string) error {
	now := s.db.nowMS()
	res, err := s.db.db.ExecContext(ctx, `INSERT INTO backups(platform_id, job_id, kind, state, encrypted, format, file, reason, started)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.PlatformID, b.JobID, b.Kind, myt.BackupRunning, b.Encrypted, b.Format, file, b.Reason, now)
	if err != nil {
		return err
	}
	b.ID, err = res.LastInsertId()
	b.State, b.Started = myt.BackupRunning, fromMS(now)
	return err
}

// FinishBackup records the end of a running backup: its state (ok or
// failed), size, checksum, duration and error. ECONFLICT when the backup
// is not running (a restart marked it failed meanwhile).
func (s *BackupStore) FinishBackup(ctx context.Context, b *myt.Backup) error {
	res, err := s.db.db.ExecContext(ctx, `UPDATE backups SET state = ?, size = ?, sha256 = ?, duration_ms = ?, error = ?
		WHERE id = ? AND state = ?`, b.State, b.Size, b.SHA256, b.Duration.Milliseconds(), b.Error, b.ID, myt.BackupRunning)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return myt.Errorf(myt.ECONFLICT, "Backup %d is no longer running.", b.ID)
	}
	return nil
}

// Backup returns the backup with id and its file. ENOTFOUND when there is
// none.
func (s *BackupStore) Backup(ctx context.Context, id int64) (*myt.Backup, string, error) {
	b, file, err := scanBackup(s.db.db.QueryRowContext(ctx, "SELECT "+backupColumns+" FROM backups b JOIN platforms p ON p.id = b.platform_id WHERE b.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", myt.Errorf(myt.ENOTFOUND, "Backup %d not found.", id)
	}
	return b, file, err
}

// Backups lists the platform's backups, newest first.
func (s *BackupStore) Backups(ctx context.Context, platformID int64) ([]*myt.Backup, error) {
	rows, err := s.db.db.QueryContext(ctx, "SELECT "+backupColumns+" FROM backups b JOIN platforms p ON p.id = b.platform_id WHERE b.platform_id = ? ORDER BY b.id DESC", platformID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*myt.Backup{}
	for rows.Next() {
		b, _, err := scanBackup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteBackup removes the record of backup id and returns its file.
// ENOTFOUND when there is none.
func (s *BackupStore) DeleteBackup(ctx context.Context, id int64) (string, error) {
	var file string
	err := s.db.db.QueryRowContext(ctx, "DELETE FROM backups WHERE id = ? RETURNING file", id).Scan(&file)
	if errors.Is(err, sql.ErrNoRows) {
		return "", myt.Errorf(myt.ENOTFOUND, "Backup %d not found.", id)
	}
	return file, err
}

// FailRunning marks every running backup failed (the server stopped
// while it was written) and returns their files, whose temporary
// versions the caller removes.
func (s *BackupStore) FailRunning(ctx context.Context) ([]string, error) {
	rows, err := s.db.db.QueryContext(ctx, "UPDATE backups SET state = ?, error = ? WHERE state = ? RETURNING file",
		myt.BackupFailed, "MyT stopped while this backup was written: it is incomplete.", myt.BackupRunning)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var files []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, rows.Err()
}

// Schedule returns the platform's backup schedule (a disabled default
// when none was set).
func (s *BackupStore) Schedule(ctx context.Context, platformID int64) (*myt.BackupSchedule, error) {
	sc := &myt.BackupSchedule{PlatformID: platformID, Hour: 3, Keep: 7}
	err := s.db.db.QueryRowContext(ctx, "SELECT enabled, hourly, hour, minute, keep FROM backup_schedules WHERE platform_id = ?", platformID).
		Scan(&sc.Enabled, &sc.Hourly, &sc.Hour, &sc.Minute, &sc.Keep)
	if errors.Is(err, sql.ErrNoRows) {
		return sc, nil
	}
	return sc, err
}

// SetSchedule stores a platform's backup schedule.
func (s *BackupStore) SetSchedule(ctx context.Context, sc *myt.BackupSchedule) error {
	_, err := s.db.db.ExecContext(ctx, `INSERT INTO backup_schedules(platform_id, enabled, hourly, hour, minute, keep) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(platform_id) DO UPDATE SET enabled = excluded.enabled, hourly = excluded.hourly, hour = excluded.hour,
		minute = excluded.minute, keep = excluded.keep`, sc.PlatformID, sc.Enabled, sc.Hourly, sc.Hour, sc.Minute, sc.Keep)
	return err
}

// DueSchedules returns the enabled schedules whose next time after their
// last run (or after their creation, for a first run: now) has come, and
// marks them run at now, so each time is started once.
func (s *BackupStore) DueSchedules(ctx context.Context, now time.Time) ([]*myt.BackupSchedule, error) {
	var due []*myt.BackupSchedule
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT platform_id, hourly, hour, minute, keep, last_run FROM backup_schedules WHERE enabled = 1")
		if err != nil {
			return err
		}
		type row struct {
			sc   *myt.BackupSchedule
			last sql.NullInt64
		}
		var all []row
		for rows.Next() {
			r := row{sc: &myt.BackupSchedule{Enabled: true}}
			if err := rows.Scan(&r.sc.PlatformID, &r.sc.Hourly, &r.sc.Hour, &r.sc.Minute, &r.sc.Keep, &r.last); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			if !r.last.Valid {
				// First sight: start counting from now.
				if _, err := tx.ExecContext(ctx, "UPDATE backup_schedules SET last_run = ? WHERE platform_id = ?", now.UnixMilli(), r.sc.PlatformID); err != nil {
					return err
				}
				continue
			}
			if r.sc.Next(fromMS(r.last.Int64)).After(now) {
				continue
			}
			if _, err := tx.ExecContext(ctx, "UPDATE backup_schedules SET last_run = ? WHERE platform_id = ?", now.UnixMilli(), r.sc.PlatformID); err != nil {
				return err
			}
			due = append(due, r.sc)
		}
		return nil
	})
	return due, err
}

// PlatformOwner returns the id of the user who owns platform id
// (ENOTFOUND when there is none): the scheduler starts backups as them.
func (s *BackupStore) PlatformOwner(ctx context.Context, id int64) (int64, error) {
	var uid int64
	err := s.db.db.QueryRowContext(ctx, "SELECT user_id FROM platforms WHERE id = ?", id).Scan(&uid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, myt.Errorf(myt.ENOTFOUND, "Platform not found.")
	}
	return uid, err
}
