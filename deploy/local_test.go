package deploy_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/internal/testenv"
)

// TestUnhealthySaysWhy deploys a local platform whose Grafana cannot run
// (its image replaced by one that exits at once): the job fails, and its
// log ends with every service's state and the last lines of the broken
// service's own log, so the user sees why.
func TestUnhealthySaysWhy(t *testing.T) {
	e := testenv.Require(t)
	testenv.Need(t, "root", os.Geteuid() == 0, "a local platform's secret files are chowned to the services' users")
	e.LocalPlatformPorts(t)
	s := newStore(t, `apiVersion: myt/v1
kind: Platform
metadata: {name: broken}
spec:
  target: {provider: local}
  database: {kind: timescaledb}
  broker: {amqp: false}
`)
	images := e.ImageEnv()
	delete(images, "MYT_IMAGE_WORKER")
	images["MYT_IMAGE_PYTHON"] = e.Image("python")
	// Grafana's command is its image's: the worker image's is myt with no
	// arguments, which prints its usage and exits.
	images["MYT_IMAGE_GRAFANA"] = e.Image("worker")
	env := e.DockerEnv()
	r, _ := newRunner(t, s, deploy.Tools{ComposeEnv: images, Env: env, WorkerBinaries: map[string]string{"amd64": testenv.MytBinary(t)}}, 3*time.Minute)
	t.Cleanup(func() {
		// Take the platform down again, whatever happened.
		if err := s.svc.Platforms.DeletePlatform(s.ctx, s.platform.ID); err == nil {
			return
		}
		if j, err := r.StartJob(s.ctx, s.platform.ID, myt.JobRequest{Kind: myt.JobDestroy}); err == nil {
			waitState(t, r, s.ctx, j.ID, 3*time.Minute, func(j *myt.Job) bool { return !j.Active() })
		}
	})
	j, err := r.StartJob(s.ctx, s.platform.ID, myt.JobRequest{Kind: myt.JobDeploy})
	if err != nil {
		t.Fatal(err)
	}
	j = waitState(t, r, s.ctx, j.ID, 8*time.Minute, func(j *myt.Job) bool { return !j.Active() })
	log := fullLog(t, r, s.ctx, j.ID)
	if j.State != myt.JobFailed {
		t.Fatalf("job %s, want failed\n%s", j.State, log)
	}
	_, why, ok := strings.Cut(log, "--- last lines of grafana's log ---")
	if !ok || !strings.Contains(why, "Usage:") {
		t.Errorf("the log does not end with grafana's own log:\n%s", log)
	}
	for _, want := range []string{"grafana: exited", "grafana: restarting"} {
		ok = ok && !strings.Contains(log, want)
	}
	if ok {
		t.Errorf("the log does not say grafana's state:\n%s", log)
	}
	if !strings.Contains(log, "rabbitmq: running (healthy)") {
		t.Errorf("the log does not list the healthy services:\n%s", log)
	}
	if !strings.Contains(j.Error, "docker compose up") {
		t.Errorf("job error %q", j.Error)
	}
}
