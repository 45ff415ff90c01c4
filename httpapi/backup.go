package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/myt-iot/myt"
)

// Backups: list, download, delete and schedule a platform's backups;
// taking and restoring one are jobs (POST .../backups and .../restore
// are shorthands for POST .../jobs with kind backup or restore).

func (s *Server) backups() (myt.BackupService, error) {
	if s.cfg.Backups == nil {
		return nil, myt.Errorf(myt.ENOTFOUND, "This server keeps no backups.")
	}
	return s.cfg.Backups, nil
}

func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.backups()
	if err != nil {
		return err
	}
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	bs, err := svc.FindBackups(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, bs)
}

// BackupRequest starts a backup job.
type BackupRequest struct {
	Encrypt bool `json:"encrypt"`
}

func (s *Server) startBackup(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req BackupRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	return s.startDataJob(w, r, id, myt.JobRequest{Kind: myt.JobBackup, Encrypt: req.Encrypt})
}

// RestoreRequest restores a backup into the platform; Confirm is the
// platform's name.
type RestoreRequest struct {
	Backup  int64  `json:"backup"`
	Confirm string `json:"confirm"`
}

func (s *Server) startRestore(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req RestoreRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	return s.startDataJob(w, r, id, myt.JobRequest{Kind: myt.JobRestore, Backup: req.Backup, Confirm: req.Confirm})
}

func (s *Server) startDataJob(w http.ResponseWriter, r *http.Request, id int64, req myt.JobRequest) error {
	j, err := s.cfg.Jobs.StartJob(r.Context(), id, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10))
	return writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) getBackup(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.backups()
	if err != nil {
		return err
	}
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	b, err := svc.FindBackupByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

// downloadBackup streams the dump (decrypted). Its checksum is checked
// as it goes: a mismatch aborts the response, so the client sees a cut
// download (and, for a plain one, fewer bytes than Content-Length).
func (s *Server) downloadBackup(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.backups()
	if err != nil {
		return err
	}
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	b, rc, err := svc.OpenBackup(r.Context(), id)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, BackupFileName(b)))
	if !b.Encrypted {
		w.Header().Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.Header().Set("X-Myt-Sha256", b.SHA256)
	}
	// A large backup outlasts the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(noDeadline)
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyBuffer(w, rc, make([]byte, 64<<10)); err != nil {
		s.log.Error("backup download cut", "backup", id, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// noDeadline lifts the server's write timeout.
var noDeadline time.Time

// BackupFileName is the name a downloaded backup is saved under.
func BackupFileName(b *myt.Backup) string {
	ext := map[string]string{myt.DatabaseMySQL: "sql", myt.DatabaseTimescaleDB: "pgdump", myt.DatabaseMongoDB: "archive", myt.DatabaseInfluxDB: "tar"}[b.Kind]
	return fmt.Sprintf("%s-backup-%d-%s.%s", b.Platform, b.ID, b.Started.UTC().Format("20060102T150405Z"), ext)
}

func (s *Server) deleteBackup(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.backups()
	if err != nil {
		return err
	}
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := svc.DeleteBackup(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBackupSchedule(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.backups()
	if err != nil {
		return err
	}
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	sc, err := svc.BackupSchedule(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sc)
}

func (s *Server) putBackupSchedule(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.backups()
	if err != nil {
		return err
	}
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var sc myt.BackupSchedule
	if err := decode(r, &sc); err != nil {
		return err
	}
	sc.PlatformID = id
	out, err := svc.SetBackupSchedule(r.Context(), &sc)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// Backups lists a platform's backups, newest first.
func (c *Client) Backups(ctx context.Context, platformID int64) ([]*myt.Backup, error) {
	var out []*myt.Backup
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/backups", platformID), nil, "", &out)
	return out, err
}

// Backup returns one backup.
func (c *Client) Backup(ctx context.Context, id int64) (*myt.Backup, error) {
	var out myt.Backup
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/backups/%d", id), nil, "", &out)
	return &out, err
}

// StartBackup starts a backup job.
func (c *Client) StartBackup(ctx context.Context, platformID int64, encrypt bool) (*myt.Job, error) {
	var out myt.Job
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/backups", platformID), BackupRequest{Encrypt: encrypt}, "", &out)
	return &out, err
}

// StartRestore starts a restore of backup into the platform; confirm is
// its name.
func (c *Client) StartRestore(ctx context.Context, platformID, backup int64, confirm string) (*myt.Job, error) {
	var out myt.Job
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/restore", platformID), RestoreRequest{Backup: backup, Confirm: confirm}, "", &out)
	return &out, err
}

// DeleteBackup removes a backup and its file.
func (c *Client) DeleteBackup(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/backups/%d", id), nil, "", nil)
}

// BackupSchedule returns a platform's backup schedule.
func (c *Client) BackupSchedule(ctx context.Context, platformID int64) (*myt.BackupSchedule, error) {
	var out myt.BackupSchedule
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/backup-schedule", platformID), nil, "", &out)
	return &out, err
}

// SetBackupSchedule stores a platform's backup schedule.
func (c *Client) SetBackupSchedule(ctx context.Context, sc *myt.BackupSchedule) (*myt.BackupSchedule, error) {
	var out myt.BackupSchedule
	err := c.do(ctx, http.MethodPut, fmt.Sprintf("/api/v1/platforms/%d/backup-schedule", sc.PlatformID), sc, "", &out)
	return &out, err
}

// DownloadBackup streams backup id into w and returns the bytes written;
// a plain backup is checked against its SHA-256 (X-Myt-Sha256). An error
// means the download is incomplete.
func (c *Client) DownloadBackup(ctx context.Context, id int64, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/backups/%d/download", c.BaseURL, id), nil)
	if err != nil {
		return 0, fmt.Errorf("bad server URL %q: %w", c.BaseURL, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "myt-cli/"+myt.Version)
	hc := *c.HTTP
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach MyT at %s: %w", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb errorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return 0, fmt.Errorf("GET %s: unexpected answer %s from %s", req.URL.Path, resp.Status, c.BaseURL)
		}
		return 0, &myt.Error{Code: eb.Error.Code, Message: eb.Error.Message, Fields: eb.Error.Fields}
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), resp.Body, make([]byte, 64<<10))
	if err != nil {
		return n, fmt.Errorf("the download stopped after %d bytes: %w", n, err)
	}
	if want := resp.Header.Get("X-Myt-Sha256"); want != "" && hex.EncodeToString(h.Sum(nil)) != want {
		return n, fmt.Errorf("the download does not match the backup's SHA-256 %s", want)
	}
	return n, nil
}
