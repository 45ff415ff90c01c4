package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/sqlite"
)

// TestCodePageVersionsAndRollback: a running platform's code page offers
// Publish and lists the versions it ran with their changes; a version's
// page shows its diff against the one before; Roll back starts a publish
// job of that version's code (it fails here: the fake host has no
// platform, which is the job's business, not the page's).
func TestCodePageVersionsAndRollback(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/platforms/new")
	form := wizardForm("home")
	form.Set("provider", "local")
	form.Del("credentials")
	if r := c.post("/platforms/new", form); r.status != 303 {
		t.Fatalf("wizard: %d %s", r.status, r.body)
	}
	ctx := e.ctxOf(t, "ada", adminPW)
	ps, err := e.svc.Platforms.FindPlatforms(ctx, myt.PlatformFilter{})
	if err != nil || len(ps) != 1 {
		t.Fatal(ps, err)
	}
	p := ps[0]
	const v1 = "def process(msg):\n    return msg['payload']\n"
	const v2 = "def process(msg):\n    out = dict(msg['payload'])\n    out['t'] = out['t'] * 10\n    return out\n"
	p.Design.Spec.Processing.Handler = v2
	if p, err = e.svc.Platforms.UpdatePlatform(ctx, p.ID, p.Design); err != nil {
		t.Fatal(err)
	}
	// As a successful update leaves it: a job at the platform's revision,
	// the platform running it, and two versions.
	j := &myt.Job{PlatformID: p.ID, UserID: 1, Kind: myt.JobUpdate, State: myt.JobQueued, Revision: p.Revision, Design: p.Design, StartedBy: "ada"}
	if err := e.jobs.CreateJob(context.Background(), j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	j.State = myt.JobSucceeded
	if err := e.jobs.SaveJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if err := e.jobs.SetPlatformDeployment(context.Background(), p.ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &p.Revision}); err != nil {
		t.Fatal(err)
	}
	code := sqlite.NewCodeStore(e.db)
	for _, src := range []string{v1, v2} {
		if _, err := code.RecordCode(context.Background(), &myt.CodeVersion{PlatformID: p.ID, Code: src, Author: "ada", JobID: j.ID, JobKind: myt.JobUpdate}); err != nil {
			t.Fatal(err)
		}
	}

	page := c.get("/platforms/" + itoa(p.ID) + "/handler")
	for _, want := range []string{`value="publish"`, `href="/platforms/` + itoa(p.ID) + `/handler/versions/2"`, "+3", "−1", `/handler/versions/1/rollback"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("code page lacks %q", want)
		}
	}
	if strings.Contains(page.body, `/handler/versions/2/rollback"`) {
		t.Error("the running version offers a rollback to itself")
	}
	ver := c.get("/platforms/" + itoa(p.ID) + "/handler/versions/2")
	for _, want := range []string{`diff-line diff-del`, `return msg[&#39;payload&#39;]`, `diff-line diff-add`, `out[&#39;t&#39;] = out[&#39;t&#39;] * 10`} {
		if !strings.Contains(ver.body, want) {
			t.Errorf("version page lacks %q", want)
		}
	}
	if r := c.get("/platforms/" + itoa(p.ID) + "/handler/versions/9"); r.status != 404 {
		t.Errorf("version 9: %d", r.status)
	}
	r := c.post("/platforms/"+itoa(p.ID)+"/handler/versions/1/rollback", url.Values{})
	if r.status != 303 || !strings.HasPrefix(r.location, "/jobs/") {
		t.Fatalf("rollback: %d %q %s", r.status, r.location, r.body)
	}
	js, err := e.runner.FindJobs(ctx, myt.JobFilter{Limit: 1})
	if err != nil || len(js) != 1 || js[0].Kind != myt.JobPublish || js[0].Design.Spec.Processing.Handler != v1 {
		t.Fatalf("the rollback's job: %+v %v", js, err)
	}
}
