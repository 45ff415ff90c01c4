package deploy_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/sqlite"
)

// fakeDBDocker stands in for the docker CLI: `docker exec NAME sh -c
// SCRIPT` prints $FAKE_DIR/dump (the "database"), or fails after half of
// it when $FAKE_DIR/fail exists; `docker exec -i` (a restore) writes its
// stdin to $FAKE_DIR/restored. It records each exec's arguments.
const fakeDBDocker = `#!/bin/sh
case "$*" in
"version --format {{.Server.Version}}") echo 24.0.7; exit 0 ;;
"compose version --short") echo 2.21.0; exit 0 ;;
esac
[ "$1" = exec ] || { echo "fake docker: cannot $1" >&2; exit 1; }
echo "$*" >> "$FAKE_DIR/argv"
if [ "$2" = -i ]; then cat > "$FAKE_DIR/restored"; exit 0; fi
if [ -e "$FAKE_DIR/fail" ]; then head -c 100000 "$FAKE_DIR/dump"; echo "pg_dump: error: connection to server lost" >&2; exit 1; fi
cat "$FAKE_DIR/dump"
`

// backupEnv is a runner with a running local platform whose database is
// fakeDBDocker's.
type backupEnv struct {
	s       *store
	r       *deploy.Runner
	backups *sqlite.BackupStore
	data    string
	fake    string
}

func newBackupEnv(t *testing.T) *backupEnv {
	t.Helper()
	s := newStore(t, `apiVersion: myt/v1
kind: Platform
metadata: {name: home}
spec:
  target: {provider: local}
  database: {kind: timescaledb, fields: {t: float}}
`)
	e := &backupEnv{s: s, backups: sqlite.NewBackupStore(s.db), data: t.TempDir(), fake: t.TempDir()}
	docker := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(docker, []byte(fakeDBDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	e.r, err = deploy.New(context.Background(), deploy.Config{
		Jobs: sqlite.NewJobStore(s.db), States: sqlite.NewStateStore(s.db), Secrets: s.svc.Secrets,
		Platforms: s.svc.Platforms, Credentials: s.svc.Credentials, Backups: e.backups, DataDir: e.data, Logger: testLogger(t),
		Tools: deploy.Tools{Docker: docker, Env: map[string]string{"FAKE_DIR": e.fake}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.r.Close() })
	// Running, as a deploy leaves it.
	jobs := sqlite.NewJobStore(s.db)
	p := s.platform
	j := &myt.Job{PlatformID: p.ID, UserID: myt.UserFromContext(s.ctx).ID, Kind: myt.JobDeploy, State: myt.JobSucceeded, Revision: p.Revision, Design: p.Design, StartedBy: "ada"}
	if err := jobs.CreateJob(context.Background(), j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	if err := jobs.SetPlatformDeployment(context.Background(), p.ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &p.Revision}); err != nil {
		t.Fatal(err)
	}
	return e
}

// run starts a job and waits for its end.
func (e *backupEnv) run(t *testing.T, req myt.JobRequest) *myt.Job {
	t.Helper()
	j, err := e.r.StartJob(e.s.ctx, e.s.platform.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	return waitState(t, e.r, e.s.ctx, j.ID, 30*time.Second, func(j *myt.Job) bool { return !j.Active() })
}

func (e *backupEnv) backupOf(t *testing.T, jobID int64) *myt.Backup {
	t.Helper()
	bs, err := e.r.FindBackups(e.s.ctx, e.s.platform.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.JobID == jobID {
			return b
		}
	}
	t.Fatalf("no backup of job %d", jobID)
	return nil
}

// TestBackupJob: a backup job streams the container's dump into the data
// directory, listed good with its checksum; a dump that fails midway is
// listed failed and leaves no file; a restore streams the stored dump
// back, only with the platform's name; the platform stays running.
func TestBackupJob(t *testing.T) {
	e := newBackupEnv(t)
	dump := bytes.Repeat([]byte("PGDMP row of the database\n"), 200_000) // 5.2 MB
	if err := os.WriteFile(filepath.Join(e.fake, "dump"), dump, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, encrypt := range []bool{false, true} {
		j := e.run(t, myt.JobRequest{Kind: myt.JobBackup, Encrypt: encrypt})
		if j.State != myt.JobSucceeded {
			t.Fatalf("backup job: %s %s", j.State, j.Error)
		}
		b := e.backupOf(t, j.ID)
		if !b.Good() || b.Encrypted != encrypt || b.Kind != "timescaledb" || b.Reason != "manual" {
			t.Errorf("backup: %+v", b)
		}
		if !encrypt && b.Size != int64(len(dump)) {
			t.Errorf("plain backup of %d bytes has size %d", len(dump), b.Size)
		}
		_, rc, err := e.r.OpenBackup(e.s.ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, dump) {
			t.Errorf("encrypt %v: read back %d bytes (%v), want the dump", encrypt, len(got), err)
		}
	}
	argv, _ := os.ReadFile(filepath.Join(e.fake, "argv"))
	if !strings.Contains(string(argv), "exec myt-home-timescaledb-1 sh -c ") || !strings.Contains(string(argv), "pg_dump") {
		t.Errorf("the dump ran as %q", argv)
	}

	// Fails midway: never good, no file left.
	os.WriteFile(filepath.Join(e.fake, "fail"), nil, 0o600)
	j := e.run(t, myt.JobRequest{Kind: myt.JobBackup})
	if j.State != myt.JobFailed || !strings.Contains(j.Error, "connection to server lost") {
		t.Errorf("a dump that fails: job %s %q", j.State, j.Error)
	}
	failed := e.backupOf(t, j.ID)
	if failed.Good() || failed.State != myt.BackupFailed {
		t.Errorf("a failed dump is listed %+v", failed)
	}
	left, _ := filepath.Glob(filepath.Join(e.data, "backups", "*", "job-"+itoa(j.ID)+"*"))
	if len(left) > 0 {
		t.Errorf("files left by the failed backup: %v", left)
	}
	if _, _, err := e.r.OpenBackup(e.s.ctx, failed.ID); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("open a failed backup: %v", err)
	}
	os.Remove(filepath.Join(e.fake, "fail"))

	// Restore: refused without the name, then streamed back whole.
	bs, _ := e.r.FindBackups(e.s.ctx, e.s.platform.ID)
	var good *myt.Backup
	for _, b := range bs {
		if b.Good() && b.Encrypted {
			good = b
		}
	}
	if _, err := e.r.StartJob(e.s.ctx, e.s.platform.ID, myt.JobRequest{Kind: myt.JobRestore, Backup: good.ID}); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("a restore without the platform's name: %v", err)
	}
	j = e.run(t, myt.JobRequest{Kind: myt.JobRestore, Backup: good.ID, Confirm: "home"})
	if j.State != myt.JobSucceeded {
		t.Fatalf("restore: %s %s", j.State, j.Error)
	}
	if got, _ := os.ReadFile(filepath.Join(e.fake, "restored")); !bytes.Equal(got, dump) {
		t.Errorf("the restore streamed %d bytes, want the %d of the dump", len(got), len(dump))
	}
	// A file changed on disk is not restored.
	file := filepath.Join(e.data, "backups", itoa(e.s.platform.ID), "job-"+itoa(good.JobID)+".pgdump")
	b, _ := os.ReadFile(file)
	b[len(b)/2] ^= 1
	os.WriteFile(file, b, 0o600)
	os.Remove(filepath.Join(e.fake, "restored"))
	j = e.run(t, myt.JobRequest{Kind: myt.JobRestore, Backup: good.ID, Confirm: "home"})
	if j.State != myt.JobFailed {
		t.Errorf("restore of a changed file: %s", j.State)
	}
	if _, err := os.Stat(filepath.Join(e.fake, "restored")); err == nil {
		t.Error("a backup whose file no longer matches its checksum reached the database")
	}
	p, _ := e.s.svc.Platforms.FindPlatformByID(e.s.ctx, e.s.platform.ID)
	if p.Status != myt.StatusRunning {
		t.Errorf("the platform after backups and restores: %s", p.Status)
	}
}

// TestDestroyFinalBackup: a destroy takes a final backup first by
// default and stops, touching nothing, when it cannot; declined
// explicitly, it goes on without.
func TestDestroyFinalBackup(t *testing.T) {
	e := newBackupEnv(t)
	os.WriteFile(filepath.Join(e.fake, "dump"), []byte("PGDMP final"), 0o600)
	os.WriteFile(filepath.Join(e.fake, "fail"), nil, 0o600)
	j := e.run(t, myt.JobRequest{Kind: myt.JobDestroy})
	if j.State != myt.JobFailed || j.Step("backup").State != myt.StepFailed || j.Step("remove").State != myt.StepPending {
		t.Errorf("destroy whose final backup fails: %s, steps %+v", j.State, j.Steps)
	}
	if p, _ := e.s.svc.Platforms.FindPlatformByID(e.s.ctx, e.s.platform.ID); p.Status != myt.StatusRunning {
		t.Errorf("after a destroy stopped by its final backup the platform is %s, want running (nothing was touched)", p.Status)
	}
	os.Remove(filepath.Join(e.fake, "fail"))
	j = e.run(t, myt.JobRequest{Kind: myt.JobDestroy})
	if j.State != myt.JobSucceeded || j.Step("backup").State != myt.StepSucceeded {
		t.Fatalf("destroy with a final backup: %s %s, steps %+v", j.State, j.Error, j.Steps)
	}
	b := e.backupOf(t, j.ID)
	if !b.Good() || b.Reason != "before destroy" || b.Size != int64(len("PGDMP final")) {
		t.Errorf("final backup: %+v", b)
	}
	if _, err := e.r.StartJob(e.s.ctx, e.s.platform.ID, myt.JobRequest{Kind: myt.JobBackup, FinalBackup: new(false)}); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("finalBackup on a backup job: %v", err)
	}
}

// TestBackupRestartFailsRunning: a backup left running by a stopped
// server is failed at the next start, and its part file removed.
func TestBackupRestartFailsRunning(t *testing.T) {
	e := newBackupEnv(t)
	b := &myt.Backup{PlatformID: e.s.platform.ID, JobID: 99, Kind: "timescaledb"}
	rel := filepath.Join("backups", itoa(e.s.platform.ID), "job-99.pgdump")
	if err := e.backups.CreateBackup(context.Background(), b, rel); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(e.data, filepath.Dir(rel)), 0o700)
	os.WriteFile(filepath.Join(e.data, rel+".part"), []byte("PGDMP half"), 0o600)
	e.r.Close()
	r, err := deploy.New(context.Background(), deploy.Config{
		Jobs: sqlite.NewJobStore(e.s.db), States: sqlite.NewStateStore(e.s.db), Secrets: e.s.svc.Secrets,
		Platforms: e.s.svc.Platforms, Credentials: e.s.svc.Credentials, Backups: e.backups, DataDir: e.data, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.FindBackupByID(e.s.ctx, b.ID)
	if err != nil || got.Good() || got.State != myt.BackupFailed {
		t.Errorf("after a restart: %+v %v, want failed", got, err)
	}
	if _, err := os.Stat(filepath.Join(e.data, rel+".part")); !os.IsNotExist(err) {
		t.Errorf("the part file is left: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// dueAlways is a schedule store whose one schedule is always due.
type dueAlways struct{ sc *myt.BackupSchedule }

func (d dueAlways) DueSchedules(context.Context, time.Time) ([]*myt.BackupSchedule, error) {
	return []*myt.BackupSchedule{d.sc}, nil
}

// TestScheduledBackups: the scheduler starts a backup of a local
// platform as its owner, with no signed-in user, and keeps only the
// schedule's newest good ones.
func TestScheduledBackups(t *testing.T) {
	e := newBackupEnv(t)
	os.WriteFile(filepath.Join(e.fake, "dump"), []byte("PGDMP scheduled"), 0o600)
	sc := &myt.BackupSchedule{PlatformID: e.s.platform.ID, Enabled: true, Hourly: true, Keep: 1}
	if err := e.backups.SetSchedule(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	owner := func(ctx context.Context, id int64) (int64, error) { return e.backups.PlatformOwner(ctx, id) }
	var jobs []int64
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.r.RunBackupSchedules(ctx, dueAlways{sc}, owner); close(done) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			js, _ := e.r.FindJobs(e.s.ctx, myt.JobFilter{PlatformID: &e.s.platform.ID})
			if len(js) > 0 && js[0].Kind == myt.JobBackup && !js[0].Active() && (len(jobs) == 0 || js[0].ID != jobs[len(jobs)-1]) {
				if js[0].State != myt.JobSucceeded || js[0].StartedBy != "schedule" {
					t.Fatalf("scheduled backup job: %s by %q: %s", js[0].State, js[0].StartedBy, js[0].Error)
				}
				jobs = append(jobs, js[0].ID)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no scheduled backup ran")
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		<-done
	}
	bs, _ := e.r.FindBackups(e.s.ctx, e.s.platform.ID)
	if len(bs) != 1 || bs[0].JobID != jobs[1] || !bs[0].Good() || bs[0].Reason != "schedule" {
		t.Errorf("after two scheduled backups keeping 1: %+v", bs)
	}
}
