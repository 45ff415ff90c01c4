package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
)

// Backups and restores on deployed local platforms (docs/backup.md).
// TimescaleDB's lifecycle (the test environment's PostgreSQL 15, without
// the TimescaleDB extension) takes backups on demand, plain and
// encrypted, has MyT killed in the middle of one, restores one into the
// same platform, and destroys with a final backup, which a new platform
// then restores. MongoDB and InfluxDB run substitutes in the test
// environment (FerretDB, and an InfluxDB whose CLI has no backup), which
// have no dump tool: their destroy is refused until the final backup is
// declined.

// bulkRows is how many rows the TimescaleDB lifecycle adds straight into
// the records table, so that backup and restore are measured on them.
const bulkRows = 1_000_000

// backupCheck carries the source platform's data from the day-two checks
// to the restore into a new platform.
type backupCheck struct {
	data string // MyT's data directory
	// want are a platform's records (dev-1, dev-2) through the worker's
	// export, and fingerprint its table's row count and digest, when its
	// destroy started (atDestroy).
	want        map[string][]map[string]any
	fingerprint string
	backupTime  time.Duration
	backupSize  int64
}

// psql runs a query in the platform's database container.
func psql(t *testing.T, h platformHost, project, query string) string {
	t.Helper()
	script := `PGPASSWORD="$(cat /run/secrets/db_password)" psql -h 127.0.0.1 -U myt -d myt -v ON_ERROR_STOP=1 -tAc "$1"`
	return strings.TrimSpace(h.docker(t, "exec", project+"-timescaledb-1", "sh", "-c", script, "psql", query))
}

// recordsTable is the table the worker writes.
func recordsTable(t *testing.T, h platformHost, project string) string {
	t.Helper()
	tb := psql(t, h, project, "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'device' LIMIT 1")
	if tb == "" {
		t.Fatal("no records table")
	}
	return tb
}

// fingerprint is the table's row count and a digest of every row.
func fingerprint(t *testing.T, h platformHost, project string) string {
	t.Helper()
	tb := recordsTable(t, h, project)
	return psql(t, h, project, fmt.Sprintf("SELECT count(*) || ' ' || md5(string_agg(id || '|' || device || '|' || ts::text || '|' || coalesce(temperature::text, ''), ',' ORDER BY id)) FROM %s", tb))
}

// startAndWait starts a job through start and waits for its end.
func startAndWait(t *testing.T, c *httpapi.Client, start func() (*myt.Job, error)) *myt.Job {
	t.Helper()
	j, err := start()
	if err != nil {
		t.Fatal(err)
	}
	return waitJob(t, c, j.ID, 15*time.Minute)
}

// backupOf returns the platform's backup written by job id.
func backupOf(t *testing.T, c *httpapi.Client, platformID, jobID int64) *myt.Backup {
	t.Helper()
	bs, err := c.Backups(context.Background(), platformID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.JobID == jobID {
			return b
		}
	}
	t.Fatalf("no backup of job %d among %d", jobID, len(bs))
	return nil
}

// dayTwo: backups of a running TimescaleDB platform with a million bulk
// rows, checked as a user would (list, download, checksum), a kill of
// MyT mid-backup, and a restore into the same platform that takes it
// back to the backup's rows. restart kills MyT and starts it again.
func (bc *backupCheck) dayTwo(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, restart func()) {
	t.Helper()
	ctx := context.Background()
	project := "myt-" + p.Name
	tb := recordsTable(t, h, project)
	start := time.Now()
	psql(t, h, project, fmt.Sprintf(`INSERT INTO %s (id, device, topic, ts, temperature)
		SELECT 'bulk-' || g, 'bulk', 'myt/bulk/data', timestamptz '2026-01-01' + g * interval '1 second', g / 10.0 FROM generate_series(1, %d) g`, tb, bulkRows))
	t.Logf("%d bulk rows inserted in %s", bulkRows, time.Since(start).Round(100*time.Millisecond))

	// On demand, plain: listed good with its size and checksum, which the
	// file and the download match.
	j := startAndWait(t, c, func() (*myt.Job, error) { return c.StartBackup(ctx, p.ID, false) })
	if j.State != myt.JobSucceeded {
		t.Fatalf("backup job %s: %s\n%s", j.State, j.Error, jobLog(t, c, j.ID))
	}
	plain := backupOf(t, c, p.ID, j.ID)
	bc.backupTime, bc.backupSize = plain.Duration, plain.Size
	t.Logf("backup of %d+ rows: %s in %s (%s); job %s", bulkRows, humanSize(plain.Size), plain.Duration.Round(100*time.Millisecond), plain.Format, stepTimes(j))
	if !plain.Good() || plain.Size == 0 || len(plain.SHA256) != 64 || plain.Kind != "timescaledb" {
		t.Fatalf("backup: %+v", plain)
	}
	file := filepath.Join(bc.data, "backups", fmt.Sprint(p.ID), fmt.Sprintf("job-%d.pgdump", j.ID))
	if got := fileSum(t, file); got != plain.SHA256 {
		t.Errorf("file %s has SHA-256 %s, the backup says %s", file, got, plain.SHA256)
	}
	var dl bytes.Buffer
	if n, err := c.DownloadBackup(ctx, plain.ID, &dl); err != nil || n != plain.Size {
		t.Fatalf("download: %d bytes, %v; want %d", n, err, plain.Size)
	}
	if sum := sha256.Sum256(dl.Bytes()); hex.EncodeToString(sum[:]) != plain.SHA256 || !bytes.HasPrefix(dl.Bytes(), []byte("PGDMP")) {
		t.Errorf("the download is not the backup (or not a pg_dump archive: %q)", dl.Bytes()[:min(5, dl.Len())])
	}

	// Encrypted: the file holds no pg_dump archive, the download does.
	j = startAndWait(t, c, func() (*myt.Job, error) { return c.StartBackup(ctx, p.ID, true) })
	if j.State != myt.JobSucceeded {
		t.Fatalf("encrypted backup job %s: %s\n%s", j.State, j.Error, jobLog(t, c, j.ID))
	}
	enc := backupOf(t, c, p.ID, j.ID)
	encFile := filepath.Join(bc.data, "backups", fmt.Sprint(p.ID), fmt.Sprintf("job-%d.pgdump", j.ID))
	if head := readHead(t, encFile, 7); !enc.Encrypted || head != "MYTBK1\n" {
		t.Errorf("encrypted backup: %+v, file starts %q", enc, head)
	}
	dl.Reset()
	if _, err := c.DownloadBackup(ctx, enc.ID, &dl); err != nil || !bytes.HasPrefix(dl.Bytes(), []byte("PGDMP")) || int64(dl.Len()) < plain.Size/2 {
		t.Errorf("encrypted download: %d bytes, %v", dl.Len(), err)
	}
	if err := c.DeleteBackup(ctx, enc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(encFile); !os.IsNotExist(err) {
		t.Errorf("the deleted backup's file is still there: %v", err)
	}

	// MyT killed while a backup streams: after the restart that backup
	// is failed, never good, and its part file is gone.
	j, err := c.StartBackup(ctx, p.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(bc.data, "backups", fmt.Sprint(p.ID), fmt.Sprintf("job-%d.pgdump.part", j.ID))
	deadline := time.Now().Add(time.Minute)
	for {
		if fi, err := os.Stat(part); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup job %d never started writing %s", j.ID, part)
		}
		time.Sleep(20 * time.Millisecond)
	}
	restart()
	killed := backupOf(t, c, p.ID, j.ID)
	if killed.Good() || killed.State != myt.BackupFailed {
		t.Errorf("the backup MyT was killed in: %+v, want failed", killed)
	}
	for _, f := range []string{part, strings.TrimSuffix(part, ".part")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is left after the restart: %v", f, err)
		}
	}
	if j, _ := c.Job(ctx, j.ID); j == nil || j.State != myt.JobInterrupted {
		t.Errorf("the killed backup's job: %+v", j)
	}
	if pl, _ := c.Platform(ctx, p.ID); pl == nil || pl.Status != myt.StatusRunning {
		t.Errorf("the platform after a killed backup: %+v", pl)
	}

	// A restore into the same platform takes it back to the backup: the
	// records added since are gone, the others equal. It needs the
	// platform's name typed.
	want := fingerprint(t, h, project)
	dev1 := records(t, h, project, "dev-1")
	publish(t, c, p, h, "dev-late", 5, func(i int) map[string]any { return map[string]any{"temperature": float64(i) + 0.5} })
	waitRecords(t, h, project, "dev-late", 5)
	if _, err := c.StartRestore(ctx, p.ID, plain.ID, "wrong"); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("a restore without the platform's name: %v, want EINVALID", err)
	}
	start = time.Now()
	j = startAndWait(t, c, func() (*myt.Job, error) { return c.StartRestore(ctx, p.ID, plain.ID, p.Name) })
	if j.State != myt.JobSucceeded {
		t.Fatalf("restore job %s: %s\n%s", j.State, j.Error, jobLog(t, c, j.ID))
	}
	t.Logf("restore of %d+ rows into the same platform: %s (%s)", bulkRows, time.Since(start).Round(100*time.Millisecond), j.Summary)
	if got := fingerprint(t, h, project); got != want {
		t.Errorf("after the restore: %s, want %s", got, want)
	}
	if n := len(records(t, h, project, "dev-late")); n != 0 {
		t.Errorf("dev-late has %d records after restoring a backup taken before them", n)
	}
	if diff := cmp.Diff(dev1, records(t, h, project, "dev-1")); diff != "" {
		t.Errorf("dev-1 after the restore (-want +got):\n%s", diff)
	}
}

// atDestroy is what each platform held when its destroy started (by
// name): what its final backup must carry.
var atDestroy sync.Map // string → *backupCheck

// destroyRequest is a lifecycle's destroy: with the final backup (the
// default) where the test environment's database has a dump tool; else
// a default destroy is first shown refused, nothing removed, and the
// backup is declined.
func destroyRequest(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost) myt.JobRequest {
	t.Helper()
	switch p.Design.Spec.Database.Kind {
	case myt.DatabaseMongoDB, myt.DatabaseInfluxDB:
	case myt.DatabaseTimescaleDB:
		project := "myt-" + p.Name
		atDestroy.Store(p.Name, &backupCheck{fingerprint: fingerprint(t, h, project),
			want: map[string][]map[string]any{"dev-1": records(t, h, project, "dev-1"), "dev-2": records(t, h, project, "dev-2")}})
		return myt.JobRequest{Kind: myt.JobDestroy}
	default:
		return myt.JobRequest{Kind: myt.JobDestroy}
	}
	project := "myt-" + p.Name
	before := startTimes(t, h, project)
	j := startAndWait(t, c, func() (*myt.Job, error) {
		return c.StartJob(context.Background(), p.ID, myt.JobRequest{Kind: myt.JobDestroy})
	})
	if j.State != myt.JobFailed || j.Step("backup").State != myt.StepFailed || j.Step("remove").State != myt.StepPending {
		t.Errorf("a destroy whose final backup cannot be taken (no dump tool in the substitute): %s, steps %+v", j.State, j.Steps)
	}
	if after := startTimes(t, h, project); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the refused destroy touched containers:\nbefore %v\nafter  %v", before, after)
	}
	return myt.JobRequest{Kind: myt.JobDestroy, FinalBackup: new(false)}
}

// restoreIntoNew restores the destroyed platform's final backup into a
// new TimescaleDB platform: nothing is lost.
func (bc *backupCheck) restoreIntoNew(t *testing.T, c *httpapi.Client, h platformHost, source string) {
	t.Helper()
	ctx := context.Background()
	v, ok := atDestroy.Load(source)
	if !ok {
		t.Fatalf("the destroy of %s recorded nothing", source)
	}
	was := v.(*backupCheck)
	src, err := c.PlatformByName(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := c.Backups(ctx, src.ID)
	if err != nil {
		t.Fatal(err)
	}
	var final *myt.Backup
	for _, b := range bs {
		if b.Reason == "before destroy" && b.Good() {
			final = b
			break
		}
	}
	if final == nil {
		t.Fatalf("the destroy of %s left no good final backup: %+v", source, bs)
	}
	t.Logf("final backup %d: %s in %s", final.ID, humanSize(final.Size), final.Duration.Round(100*time.Millisecond))
	p := createPlatform(t, c, `apiVersion: myt/v1
kind: Platform
metadata: {name: here-restored}
spec:
  target: {provider: local}
  database: {kind: timescaledb, fields: {temperature: float, humidity: float}}
`)
	t.Cleanup(func() {
		if j, err := c.StartJob(context.Background(), p.ID, myt.JobRequest{Kind: myt.JobDestroy, FinalBackup: new(false), DeleteData: true, Confirm: p.Name}); err == nil {
			waitJob(t, c, j.ID, 5*time.Minute)
		}
	})
	runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobDeploy})
	project := "myt-" + p.Name
	start := time.Now()
	j := startAndWait(t, c, func() (*myt.Job, error) { return c.StartRestore(ctx, p.ID, final.ID, p.Name) })
	if j.State != myt.JobSucceeded {
		t.Fatalf("restore job %s: %s\n%s", j.State, j.Error, jobLog(t, c, j.ID))
	}
	t.Logf("restore of %d+ rows into a new platform: %s (%s)", bulkRows, time.Since(start).Round(100*time.Millisecond), j.Summary)
	if got := fingerprint(t, h, project); got != was.fingerprint {
		t.Errorf("the new platform's table: %s, want the destroyed one's %s", got, was.fingerprint)
	}
	for dev, want := range was.want {
		if diff := cmp.Diff(want, records(t, h, project, dev)); diff != "" {
			t.Errorf("%s in the new platform (-destroyed +restored):\n%s", dev, diff)
		}
	}
	// A backup of another kind is refused.
	if _, err := c.StartRestore(ctx, p.ID, 999999, p.Name); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("restore of a backup that does not exist: %v", err)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func readHead(t *testing.T, path string, n int) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	k, _ := io.ReadFull(f, b)
	return string(b[:k])
}

func humanSize(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
