package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/myt-iot/myt"
)

var _ myt.BackupService = (*Runner)(nil)

// ownedBackup returns the backup and its file when the principal owns its
// platform.
func (r *Runner) ownedBackup(ctx context.Context, id int64) (*myt.Backup, string, error) {
	if r.cfg.Backups == nil {
		return nil, "", myt.Errorf(myt.ENOTFOUND, "Backup %d not found.", id)
	}
	b, file, err := r.cfg.Backups.Backup(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if _, err := r.cfg.Platforms.FindPlatformByID(ctx, b.PlatformID); myt.ErrorCode(err) == myt.ENOTFOUND {
		return nil, "", myt.Errorf(myt.ENOTFOUND, "Backup %d not found.", id)
	} else if err != nil {
		return nil, "", err
	}
	return b, file, nil
}

// FindBackups implements myt.BackupService.
func (r *Runner) FindBackups(ctx context.Context, platformID int64) ([]*myt.Backup, error) {
	if _, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID); err != nil {
		return nil, err
	}
	if r.cfg.Backups == nil {
		return []*myt.Backup{}, nil
	}
	return r.cfg.Backups.Backups(ctx, platformID)
}

// FindBackupByID implements myt.BackupService.
func (r *Runner) FindBackupByID(ctx context.Context, id int64) (*myt.Backup, error) {
	b, _, err := r.ownedBackup(ctx, id)
	return b, err
}

// OpenBackup implements myt.BackupService.
func (r *Runner) OpenBackup(ctx context.Context, id int64) (*myt.Backup, io.ReadCloser, error) {
	b, file, err := r.ownedBackup(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if !b.Good() {
		return nil, nil, myt.Errorf(myt.EINVALID, "Backup %d is %s: only a good backup can be read.", id, b.State)
	}
	key, err := r.backupKey(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	rc, err := openBackup(filepath.Join(r.cfg.DataDir, file), b.SHA256, key, backupIdent(b))
	if err != nil {
		return nil, nil, fmt.Errorf("open backup %d: %w", id, err)
	}
	return b, rc, nil
}

// backupKey returns an encrypted backup's key (nil for a plain one).
func (r *Runner) backupKey(ctx context.Context, b *myt.Backup) ([]byte, error) {
	if !b.Encrypted {
		return nil, nil
	}
	key, err := r.cfg.Secrets.Get(ctx, b.PlatformID, secretBackupKey+strconv.FormatInt(b.ID, 10))
	if err != nil {
		return nil, fmt.Errorf("the key of backup %d: %w", b.ID, err)
	}
	return key, nil
}

// DeleteBackup implements myt.BackupService.
func (r *Runner) DeleteBackup(ctx context.Context, id int64) error {
	b, _, err := r.ownedBackup(ctx, id)
	if err != nil {
		return err
	}
	if b.State == myt.BackupRunning {
		return myt.Errorf(myt.ECONFLICT, "Backup %d is being written: cancel its job first.", id)
	}
	if r.restoring(id) {
		return myt.Errorf(myt.ECONFLICT, "Backup %d is being restored: wait for the restore to end.", id)
	}
	return r.deleteBackup(ctx, id)
}

// restoring reports whether an active restore reads backup id.
func (r *Runner) restoring(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.active {
		if w.job.Kind == myt.JobRestore && w.req.Backup == id {
			return true
		}
	}
	return false
}

func (r *Runner) deleteBackup(ctx context.Context, id int64) error {
	file, err := r.cfg.Backups.DeleteBackup(ctx, id)
	if err != nil {
		return err
	}
	path := filepath.Join(r.cfg.DataDir, file)
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	_ = os.Remove(path + partSuffix)
	return nil
}

// checkRestore says whether backup id can be restored into p: the
// principal owns it, it is good, and of p's database kind.
func (r *Runner) checkRestore(ctx context.Context, p *myt.Platform, id int64) error {
	if id == 0 {
		return &myt.Error{Code: myt.EINVALID, Message: "The job cannot start.", Fields: []myt.FieldError{{Field: "backup", Message: "name the backup to restore"}}}
	}
	b, _, err := r.ownedBackup(ctx, id)
	if err != nil {
		return err
	}
	if !b.Good() {
		return myt.Errorf(myt.EINVALID, "Backup %d is %s: only a good backup can be restored.", id, b.State)
	}
	if kind := p.Design.Spec.Database.Kind; b.Kind != kind {
		return myt.Errorf(myt.EINVALID, "Backup %d is of a %s database; %s runs %s. A backup restores into a platform of the same kind (move data across kinds through export and import).", id, b.Kind, p.Name, kind)
	}
	return nil
}

// BackupSchedule implements myt.BackupService.
func (r *Runner) BackupSchedule(ctx context.Context, platformID int64) (*myt.BackupSchedule, error) {
	p, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	if r.cfg.Backups == nil {
		return nil, myt.Errorf(myt.EINVALID, "This MyT server keeps no backups.")
	}
	sc, err := r.cfg.Backups.Schedule(ctx, platformID)
	if err != nil {
		return nil, err
	}
	sc.Unavailable = scheduleUnavailable(p)
	return sc, nil
}

// scheduleUnavailable says why MyT cannot back p up on its own.
func scheduleUnavailable(p *myt.Platform) string {
	if p.Design.Spec.Target.Provider == myt.ProviderLocal {
		return ""
	}
	return "Scheduled backups run without a signed-in user, and MyT opens an ssh or cloud platform's credential (its SSH key) only with its owner's key, which it does not keep: schedules run for local platforms only. Run `myt backup run` from a scheduler of your own, with an API token, instead."
}

// SetBackupSchedule implements myt.BackupService.
func (r *Runner) SetBackupSchedule(ctx context.Context, sc *myt.BackupSchedule) (*myt.BackupSchedule, error) {
	p, err := r.cfg.Platforms.FindPlatformByID(ctx, sc.PlatformID)
	if err != nil {
		return nil, err
	}
	if r.cfg.Backups == nil {
		return nil, myt.Errorf(myt.EINVALID, "This MyT server keeps no backups.")
	}
	var fields []myt.FieldError
	if sc.Hour < 0 || sc.Hour > 23 {
		fields = append(fields, myt.FieldError{Field: "hour", Message: "0 to 23"})
	}
	if sc.Minute < 0 || sc.Minute > 59 {
		fields = append(fields, myt.FieldError{Field: "minute", Message: "0 to 59"})
	}
	if sc.Keep < 0 {
		fields = append(fields, myt.FieldError{Field: "keep", Message: "0 (keep all) or more"})
	}
	if why := scheduleUnavailable(p); sc.Enabled && why != "" {
		fields = append(fields, myt.FieldError{Field: "enabled", Message: why})
	}
	if len(fields) > 0 {
		return nil, &myt.Error{Code: myt.EINVALID, Message: "The schedule was not saved.", Fields: fields}
	}
	if err := r.cfg.Backups.SetSchedule(ctx, sc); err != nil {
		return nil, err
	}
	return r.BackupSchedule(ctx, sc.PlatformID)
}
