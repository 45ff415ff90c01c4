package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sort"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

// TestMigrationKeepsJobsAndLogs builds a database at schema version 5
// (before the publish job kind) with a job and its log, then opens it:
// the jobs table is rebuilt for the new kind, and neither the job nor its
// log is lost (dropping the old table with foreign keys on would have
// cascaded to the log).
func TestMigrationKeepsJobsAndLogs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "myt.db")
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob("migrations/*.sql")
	sort.Strings(names)
	for _, n := range names[:5] {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(b)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	for _, q := range []string{
		`INSERT INTO users(id, username, password_hash, key_salt, wrapped_key, created) VALUES (1, 'ada', 'x', x'00', x'00', 0)`,
		`INSERT INTO platforms(id, user_id, name, status, design, created, updated, deployed_revision) VALUES (7, 1, 'home', 'running', '{}', 0, 0, 1)`,
		`INSERT INTO jobs(id, platform_id, user_id, kind, state, revision, design, started_by, created) VALUES (3, 7, 1, 'deploy', 'succeeded', 1, '{}', 'ada', 0)`,
		`INSERT INTO job_logs(job_id, seq, text) VALUES (3, 1, 'deployed')`,
		`PRAGMA user_version = 5`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db, err := sqlite.Open(ctx, path, sqlite.Options{ServerKey: vault.NewKey(), Params: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	jobs := sqlite.NewJobStore(db)
	j, err := jobs.Job(ctx, 3)
	if err != nil {
		t.Fatalf("the job is gone after the migration: %v", err)
	}
	if j.Kind != myt.JobDeploy || j.StartedBy != "ada" {
		t.Errorf("job after the migration: %+v", j)
	}
	logs, err := jobs.Log(ctx, 3, 0, 10)
	if err != nil || len(logs) != 1 || logs[0].Text != "deployed" {
		t.Errorf("the job's log after the migration: %v %v", logs, err)
	}
	pub := &myt.Job{PlatformID: 7, UserID: 1, Kind: myt.JobPublish, State: myt.JobQueued, Revision: 2, Design: myt.NewDesign(), StartedBy: "ada"}
	if err := jobs.CreateJob(ctx, pub, myt.StatusDeploying); err != nil {
		t.Errorf("a publish job after the migration: %v", err)
	}
}

func TestCodeVersions(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	p, err := f.svc.Platforms.CreatePlatform(ctx, localDesign("home"))
	if err != nil {
		t.Fatal(err)
	}
	code := sqlite.NewCodeStore(f.db)
	rec := func(c string) bool {
		t.Helper()
		added, err := code.RecordCode(ctx, &myt.CodeVersion{PlatformID: p.ID, Code: c, Author: "ada", JobID: 1, JobKind: myt.JobPublish})
		if err != nil {
			t.Fatal(err)
		}
		return added
	}
	if rec("") {
		t.Error("a platform that never had a handler got a passthrough version")
	}
	if !rec("def process(msg):\n    return msg\n") || rec("def process(msg):\n    return msg\n") {
		t.Error("v1: recorded once")
	}
	if !rec("def process(msg):\n    return None\n") || !rec("def process(msg):\n    return msg\n") {
		t.Error("v2, v3")
	}
	vs, err := code.CodeVersions(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].Version != 3 || !vs[0].Running || vs[1].Running || vs[0].SameAs != 1 || vs[1].SameAs != 0 {
		for _, v := range vs {
			t.Logf("%+v", *v)
		}
		t.Fatal("want v3 (running, same as v1), v2, v1")
	}
	if _, err := code.CodeVersion(ctx, p.ID, 9); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("version 9: %v, want ENOTFOUND", err)
	}
}

func localDesign(name string) *myt.Design {
	d := myt.NewDesign()
	d.Metadata.Name = name
	d.Spec.Target = myt.Target{Provider: "local", DeviceCIDRs: []string{"0.0.0.0/0"}}
	d.Spec.Database.Kind = "influxdb"
	return d
}
