package deploy_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/sqlite"
)

// BenchmarkJobOverhead measures what a job costs beyond the tools it runs:
// a cloud destroy (render, init, plan, apply, with every step stored and
// the log kept) whose OpenTofu is the recorded one, side by side with the
// same tool calls run bare. Run:
//
//	go test ./deploy -run '^$' -bench JobOverhead -benchtime 20x
//
// job-ms/op is the whole job, tools-ms/op the same tofu commands alone,
// overhead-ms/op the difference: MyT's own time per job.
func BenchmarkJobOverhead(b *testing.B) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		b.Fatal(err)
	}
	tofu := filepath.Join(testdata, "fake-tofu")
	s := awsStore(b)
	r, _ := newRunner(b, s, deploy.Tools{Tofu: tofu, Ansible: filepath.Join(testdata, "fake-ansible-playbook")})
	jobs := sqlite.NewJobStore(s.db)
	ctx := s.ctx
	dir := b.TempDir()
	var jobTime, toolTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := jobs.SetPlatformDeployment(context.Background(), s.platform.ID, myt.PlatformDeployment{Status: myt.StatusRunning}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		j, err := r.StartJob(ctx, s.platform.ID, myt.JobRequest{Kind: myt.JobDestroy, DeleteData: true, Confirm: "cloudy", AutoApprove: true})
		if err != nil {
			b.Fatal(err)
		}
		ch, stop, err := r.WatchJob(ctx, j.ID)
		if err != nil {
			b.Fatal(err)
		}
		for j.Active() {
			select {
			case <-ch:
			case <-time.After(50 * time.Millisecond):
			}
			if j, err = r.FindJobByID(ctx, j.ID); err != nil {
				b.Fatal(err)
			}
		}
		stop()
		jobTime += time.Since(start)
		if j.State != myt.JobSucceeded {
			b.Fatalf("job %s: %s", j.State, j.Error)
		}
		// The same tool calls, bare.
		start = time.Now()
		for _, args := range [][]string{{"init"}, {"plan", "-json", "-out=" + filepath.Join(dir, "p")}, {"apply", "-json", filepath.Join(dir, "p")}} {
			cmd := exec.Command(tofu, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v %s", args, err, out)
			}
		}
		toolTime += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(jobTime.Milliseconds())/n, "job-ms/op")
	b.ReportMetric(float64(toolTime.Milliseconds())/n, "tools-ms/op")
	b.ReportMetric(float64((jobTime-toolTime).Milliseconds())/n, "overhead-ms/op")
}
