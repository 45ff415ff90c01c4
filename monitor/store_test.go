package monitor_test

import (
	"context"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/sqlite"
)

// TestRunningPlatformsGiveTheDeployedDesign: the poller polls what runs,
// so a design edited since the last deploy (here two workers more) does
// not change the ports it polls until it is deployed; platforms that are
// not running are not listed.
func TestRunningPlatformsGiveTheDeployedDesign(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	jobs := sqlite.NewJobStore(f.db)
	f.addPlatform(t, "designed-only")
	j := &myt.Job{PlatformID: f.platform.ID, Platform: f.platform.Name, UserID: f.platform.UserID, Kind: myt.JobDeploy,
		State: myt.JobQueued, Revision: 1, Design: f.platform.Design, StartedBy: "ada"}
	if err := jobs.CreateJob(ctx, j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	j.State = myt.JobSucceeded
	if err := jobs.SaveJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	rev := 1
	if err := jobs.SetPlatformDeployment(ctx, f.platform.ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &rev}); err != nil {
		t.Fatal(err)
	}
	edited := *f.platform.Design
	edited.Spec.Processing.Workers = 3
	if _, err := f.svc.Platforms.UpdatePlatform(f.ctx, f.platform.ID, &edited); err != nil {
		t.Fatal(err)
	}

	ps, err := f.store.RunningPlatforms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].ID != f.platform.ID {
		t.Fatalf("running platforms %+v, want only %d", ps, f.platform.ID)
	}
	p := ps[0]
	if p.Revision != 2 || p.DeployedRevision != 1 || p.Design.Spec.Processing.Workers == 3 {
		t.Errorf("revision %d, deployed %d, workers %d: want the deployed revision 1's design, not the edit's 3 workers",
			p.Revision, p.DeployedRevision, p.Design.Spec.Processing.Workers)
	}
}
