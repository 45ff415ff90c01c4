package deploy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/sqlite"
)

// TestPublishRefusals: a publish goes only to a running platform that runs
// a handler, for a design that differs from the running one in its
// handler alone; a refused publish leaves the design as it was. (The
// publish itself, mid-traffic, is e2e's lifecycle: TestDeployLocal and
// TestDeploySSH.)
func TestPublishRefusals(t *testing.T) {
	s := newStore(t, `apiVersion: myt/v1
kind: Platform
metadata: {name: home}
spec:
  target: {provider: local}
  database: {kind: mysql, fields: {t: float}}
`)
	r, _ := newRunner(t, s, deploy.Tools{})
	ctx := s.ctx
	const v1 = "def process(msg):\n    return msg['payload']\n"
	const v2 = "def process(msg):\n    return None\n"
	refused := func(what, code, want string) {
		t.Helper()
		before, err := s.svc.Platforms.FindPlatformByID(ctx, s.platform.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.PublishCode(ctx, s.platform.ID, code)
		if myt.ErrorCode(err) != myt.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want EINVALID saying %q", what, err, want)
		}
		after, err := s.svc.Platforms.FindPlatformByID(ctx, s.platform.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Revision != before.Revision {
			t.Errorf("%s: the refused publish changed the design (revision %d → %d)", what, before.Revision, after.Revision)
		}
	}
	refused("empty code", "  \n", "Nothing to publish")
	refused("not deployed", v1, "code is published to a running platform")

	// Running, as a deploy of the design leaves it.
	jobs := sqlite.NewJobStore(s.db)
	running := func(d *myt.Design) {
		t.Helper()
		p, err := s.svc.Platforms.UpdatePlatform(ctx, s.platform.ID, d)
		if err != nil {
			t.Fatal(err)
		}
		j := &myt.Job{PlatformID: p.ID, UserID: myt.UserFromContext(ctx).ID, Kind: myt.JobUpdate, State: myt.JobQueued, Revision: p.Revision, Design: p.Design, StartedBy: "ada"}
		if err := jobs.CreateJob(context.Background(), j, myt.StatusDeploying); err != nil {
			t.Fatal(err)
		}
		j.State = myt.JobSucceeded
		if err := jobs.SaveJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		if err := jobs.SetPlatformDeployment(context.Background(), p.ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &p.Revision}); err != nil {
			t.Fatal(err)
		}
	}
	d := *s.platform.Design
	running(&d)
	refused("passthrough", v1, "runs without a handler")

	d.Spec.Processing.Handler = v1
	running(&d)
	refused("the same code", v1, "already runs this handler")

	// Another change waiting for an update: the publish would deploy it
	// without Ansible, so it is refused.
	other := d
	other.Spec.Database.Fields = map[string]string{"t": "float", "h": "float"}
	if _, err := s.svc.Platforms.UpdatePlatform(ctx, s.platform.ID, &other); err != nil {
		t.Fatal(err)
	}
	refused("other changes waiting", v2, "changes besides the handler")
	if _, err := r.StartJob(ctx, s.platform.ID, myt.JobRequest{Kind: myt.JobPublish}); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("a publish job of a design with other changes: %v, want EINVALID", err)
	}
}
