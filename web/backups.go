package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

// The backups page of a platform (/platforms/{id}/backups): its backups
// (state, start, duration, size, checksum) with Download and Delete, Back
// up now, Restore with the platform's name typed (a backup of this
// platform or of another of the user's platforms with the same database
// kind), and the schedule. Taking and restoring are jobs: the page starts
// them and sends the user to the job's page.

type backupsView struct {
	P       *myt.Platform
	Backups []*myt.Backup
	// Restorable are the good backups of the same database kind on the
	// user's platforms (this one's first).
	Restorable []*myt.Backup
	Schedule   *myt.BackupSchedule
	Running    bool
	CSRF       string
	// Restore form state after an error.
	RestoreID, Confirm string
}

// Size writes a byte count for people.
func (v *backupsView) Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Took writes a backup's duration.
func (v *backupsView) Took(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// Short is the start of a checksum.
func (v *backupsView) Short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// Two writes a number on two digits.
func (v *backupsView) Two(n int) string { return fmt.Sprintf("%02d", n) }

func (s *server) backupsView(w http.ResponseWriter, r *http.Request, p *myt.Platform) (*backupsView, error) {
	ctx := r.Context()
	v := &backupsView{P: p, CSRF: s.csrfToken(w, r), Running: p.Status == myt.StatusRunning && p.DeployedRevision > 0}
	var err error
	if v.Backups, err = s.cfg.Backups.FindBackups(ctx, p.ID); err != nil {
		return nil, err
	}
	if v.Schedule, err = s.cfg.Backups.BackupSchedule(ctx, p.ID); err != nil {
		return nil, err
	}
	kind := p.Design.Spec.Database.Kind
	for _, b := range v.Backups {
		if b.Good() {
			v.Restorable = append(v.Restorable, b)
		}
	}
	ps, err := s.cfg.Platforms.FindPlatforms(ctx, myt.PlatformFilter{})
	if err != nil {
		return nil, err
	}
	for _, o := range ps {
		if o.ID == p.ID || o.Design == nil || o.Design.Spec.Database.Kind != kind {
			continue
		}
		bs, err := s.cfg.Backups.FindBackups(ctx, o.ID)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b.Good() {
				v.Restorable = append(v.Restorable, b)
			}
		}
	}
	return v, nil
}

var backupNotices = map[string]string{
	"deleted":  "The backup was deleted.",
	"schedule": "The schedule was saved.",
}

func (s *server) renderBackups(w http.ResponseWriter, r *http.Request, status int, v *backupsView, errs *formErrors) {
	pg := &page{Title: "Backups · " + v.P.Name, Section: "platforms", Data: v, Errs: errs}
	if r.Method == http.MethodGet {
		pg.Notice = backupNotices[r.URL.Query().Get("ok")]
	}
	s.render(w, r, status, "backups", pg)
}

func (s *server) backupsPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	v, err := s.backupsView(w, r, p)
	if err != nil {
		return err
	}
	s.renderBackups(w, r, http.StatusOK, v, nil)
	return nil
}

func backupsURL(p *myt.Platform, ok string) string {
	return "/platforms/" + strconv.FormatInt(p.ID, 10) + "/backups?ok=" + ok
}

// backupStart starts a backup or a restore job and goes to its page; a
// refusal shows the page again with the reason.
func (s *server) backupStart(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.platformFor(r)
		if err != nil {
			return err
		}
		req := myt.JobRequest{Kind: kind, Encrypt: r.PostForm.Get("encrypt") == "1"}
		if kind == myt.JobRestore {
			req.Encrypt = false
			req.Confirm = strings.TrimSpace(r.PostForm.Get("confirm"))
			req.Backup, _ = strconv.ParseInt(r.PostForm.Get("backup"), 10, 64)
		}
		j, err := s.cfg.Jobs.StartJob(r.Context(), p.ID, req)
		if err == nil {
			s.log.Info("job started from the web", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "job", j.ID, "kind", kind)
			http.Redirect(w, r, "/jobs/"+strconv.FormatInt(j.ID, 10)+"?started=1", http.StatusSeeOther)
			return nil
		}
		if c := myt.ErrorCode(err); c != myt.EINVALID && c != myt.ECONFLICT && c != myt.ENOTFOUND {
			return err
		}
		v, verr := s.backupsView(w, r, p)
		if verr != nil {
			return verr
		}
		v.RestoreID, v.Confirm = r.PostForm.Get("backup"), req.Confirm
		fe := s.errorsFrom(r, err, func(f string) (string, string, bool) {
			switch f {
			case "confirm":
				return "confirm", "Platform name", kind == myt.JobRestore
			case "backup":
				return "backup", "Backup", kind == myt.JobRestore
			}
			return "", "", false
		})
		s.renderBackups(w, r, http.StatusUnprocessableEntity, v, fe)
		return nil
	}
}

// backupFor loads the {backup} of the {id} platform.
func (s *server) backupFor(r *http.Request) (*myt.Platform, *myt.Backup, error) {
	p, err := s.platformFor(r)
	if err != nil {
		return nil, nil, err
	}
	id, err := myt.ParseID(r.PathValue("backup"))
	if err != nil {
		return nil, nil, err
	}
	b, err := s.cfg.Backups.FindBackupByID(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	if b.PlatformID != p.ID {
		return nil, nil, myt.Errorf(myt.ENOTFOUND, "Backup %d not found.", id)
	}
	return p, b, nil
}

func (s *server) backupDelete(w http.ResponseWriter, r *http.Request) error {
	p, b, err := s.backupFor(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Backups.DeleteBackup(r.Context(), b.ID); err != nil {
		return err
	}
	http.Redirect(w, r, backupsURL(p, "deleted"), http.StatusSeeOther)
	return nil
}

// backupDownload streams the dump; a checksum mismatch on the way cuts
// the download (ErrAbortHandler), so the browser reports it failed.
func (s *server) backupDownload(w http.ResponseWriter, r *http.Request) error {
	_, b, err := s.backupFor(r)
	if err != nil {
		return err
	}
	b, rc, err := s.cfg.Backups.OpenBackup(r.Context(), b.ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	ext := map[string]string{myt.DatabaseMySQL: "sql", myt.DatabaseTimescaleDB: "pgdump", myt.DatabaseMongoDB: "archive", myt.DatabaseInfluxDB: "tar"}[b.Kind]
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-backup-%d-%s.%s"`, b.Platform, b.ID, b.Started.UTC().Format("20060102T150405Z"), ext))
	if !b.Encrypted {
		w.Header().Set("Content-Length", strconv.FormatInt(b.Size, 10))
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyBuffer(w, rc, make([]byte, 64<<10)); err != nil {
		s.log.Error("backup download cut", "backup", b.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *server) backupScheduleSave(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	sc := &myt.BackupSchedule{PlatformID: p.ID, Enabled: r.PostForm.Get("enabled") == "1", Hourly: r.PostForm.Get("every") == "hour"}
	var fe formErrors
	num := func(name, label string, lo, hi int) int {
		n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get(name)))
		if err != nil || n < lo || n > hi {
			fe.add(name, label, fmt.Sprintf("A whole number from %d to %d.", lo, hi))
		}
		return n
	}
	sc.Hour = num("hour", "Hour (UTC)", 0, 23)
	sc.Minute = num("minute", "Minute", 0, 59)
	sc.Keep = num("keep", "Backups kept", 0, 1000)
	if len(fe.Summary) == 0 {
		if _, err := s.cfg.Backups.SetBackupSchedule(r.Context(), sc); err == nil {
			http.Redirect(w, r, backupsURL(p, "schedule"), http.StatusSeeOther)
			return nil
		} else if myt.ErrorCode(err) != myt.EINVALID {
			return err
		} else {
			fe = *s.errorsFrom(r, err, func(f string) (string, string, bool) { return f, f, f == "enabled" })
		}
	}
	v, err := s.backupsView(w, r, p)
	if err != nil {
		return err
	}
	fe.Message = "The schedule was not saved."
	s.renderBackups(w, r, http.StatusUnprocessableEntity, v, &fe)
	return nil
}
