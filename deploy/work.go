package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// work is one running job.
type work struct {
	r      *Runner
	job    *myt.Job
	p      *myt.Platform // as it was when the job started
	d      *myt.Design
	req    myt.JobRequest
	cred   *myt.Credential
	secret myt.Secret

	ctx      context.Context
	cancel   context.CancelFunc
	approved chan struct{}
	done     chan struct{}

	mu         sync.Mutex // guards job and userCancel
	userCancel bool

	log *jobLog
	dir string // private job directory, 0700, removed at the end
	env map[string]string

	bundle    *render.Bundle
	bundleDir string
	address   string // the host's address once known
	sshUser   string
	sshKey    []byte
	changed   bool // whether the job changed anything on the target
}

func (r *Runner) newWork(j *myt.Job, p *myt.Platform, req myt.JobRequest, cred *myt.Credential, secret myt.Secret) *work {
	ctx, cancel := context.WithCancel(r.ctx)
	w := &work{
		r: r, job: j, p: p, d: p.Design, req: req, cred: cred, secret: secret,
		ctx: ctx, cancel: cancel, approved: make(chan struct{}, 1), done: make(chan struct{}),
		dir: filepath.Join(r.cfg.DataDir, "jobs", fmt.Sprint(j.ID)),
	}
	w.log = newJobLog(r.cfg.Jobs, j.ID, r.log.With("job", j.ID), func() { r.notify(j.ID) })
	return w
}

func (w *work) cancelByUser() {
	w.mu.Lock()
	w.userCancel = true
	w.mu.Unlock()
	w.cancel()
}

func (w *work) now() *time.Time {
	t := w.r.cfg.Now().UTC()
	return &t
}

// save stores the job (its state, steps, plan) and tells watchers.
func (w *work) save() {
	w.mu.Lock()
	err := w.r.cfg.Jobs.SaveJob(context.WithoutCancel(w.ctx), w.job)
	w.mu.Unlock()
	if err != nil {
		w.r.log.Error("save job", "job", w.job.ID, "err", err)
	}
	w.r.notify(w.job.ID)
}

func (w *work) setState(state string) {
	w.mu.Lock()
	w.job.State = state
	w.mu.Unlock()
	w.save()
}

// progress updates a step's counters and detail.
func (w *work) progress(step string, done, total int, detail string) {
	w.mu.Lock()
	if s := w.job.Step(step); s != nil {
		s.Done, s.Total, s.Detail = done, total, detail
	}
	w.mu.Unlock()
	w.save()
}

// step runs fn as the named step. A step that is not in the job's list is
// a programming error.
func (w *work) step(name string, fn func() (detail string, err error)) error {
	w.mu.Lock()
	s := w.job.Step(name)
	if s == nil {
		w.mu.Unlock()
		return fmt.Errorf("no step %q in this job", name)
	}
	s.State, s.Started = myt.StepRunning, w.now()
	w.mu.Unlock()
	w.save()
	w.log.Printf("==> %s", name)
	start := time.Now()
	detail, err := fn()
	w.mu.Lock()
	s = w.job.Step(name)
	s.Finished = w.now()
	if detail != "" {
		s.Detail = detail
	}
	switch {
	case err == nil:
		s.State = myt.StepSucceeded
	case errors.Is(err, errSkipped):
		s.State, err = myt.StepSkipped, nil
	default:
		s.State = myt.StepFailed
	}
	w.mu.Unlock()
	w.save()
	if err == nil {
		w.log.Printf("<== %s: %s (%s)", name, s.State, time.Since(start).Round(100*time.Millisecond))
	}
	return err
}

// errSkipped marks a step that had nothing to do.
var errSkipped = errors.New("skipped")

// execute runs the job to its end and records the outcome.
func (w *work) execute() {
	defer w.cancel()
	defer w.log.Close()
	defer os.RemoveAll(w.dir)
	w.mu.Lock()
	w.job.State, w.job.Started = myt.JobPlanning, w.now()
	if !w.cloud() {
		w.job.State = myt.JobRunning
	}
	w.mu.Unlock()
	w.save()
	w.log.Printf("MyT %s: %s job %d of platform %s (revision %d, %s), started by %s", myt.Version, w.job.Kind, w.job.ID, w.p.Name, w.job.Revision, w.d.Spec.Target.Provider, w.job.StartedBy)

	err := w.prepare()
	if err == nil {
		err = w.pipeline()
	}
	w.finish(err)
}

func (w *work) cloud() bool {
	p := w.d.Spec.Target.Provider
	return p != myt.ProviderSSH && p != myt.ProviderLocal
}

// prepare makes the job directory and the tools' environment.
func (w *work) prepare() error {
	for _, d := range []string{w.dir, filepath.Join(w.dir, "home"), filepath.Join(w.dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.Chmod(w.dir, 0o700); err != nil {
		return err
	}
	for _, v := range w.secret {
		w.log.mask(v)
	}
	env := map[string]string{
		"HOME":               filepath.Join(w.dir, "home"),
		"TMPDIR":             filepath.Join(w.dir, "tmp"),
		"LANG":               "C.UTF-8",
		"PATH":               os.Getenv("PATH"),
		"CHECKPOINT_DISABLE": "1",
		"TF_IN_AUTOMATION":   "1",
		"TF_INPUT":           "0",
	}
	if env["PATH"] == "" {
		env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	// Only what tools need from the server's environment: never its
	// secrets (MYT_SERVER_KEY and the like).
	for _, k := range []string{"DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "SSL_CERT_FILE", "SSL_CERT_DIR",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range w.r.cfg.Tools.Env {
		env[k] = v
	}
	w.env = env
	return nil
}

// environ returns the tools' environment plus extra.
func (w *work) environ(extra map[string]string) []string {
	return environ(environ(nil, w.env), extra)
}

// finish records the job's end and the platform's new status.
func (w *work) finish(err error) {
	w.mu.Lock()
	userCancel := w.userCancel
	w.mu.Unlock()
	ctx := context.WithoutCancel(w.ctx)
	j := w.job
	state := myt.JobSucceeded
	switch {
	case err == nil:
	case userCancel || errors.Is(err, errCancelled):
		state, j.Error = myt.JobCancelled, "Cancelled by the user."
	case w.r.ctx.Err() != nil:
		state, j.Error = myt.JobInterrupted, "MyT stopped while this job ran. Run it again: every step converges."
	default:
		state, j.Error = myt.JobFailed, userMessage(err)
	}
	// Steps left running were cut short; pending ones never ran.
	w.mu.Lock()
	for i := range j.Steps {
		if j.Steps[i].State == myt.StepRunning {
			j.Steps[i].State, j.Steps[i].Finished = myt.StepFailed, w.now()
		}
	}
	j.State, j.Finished = state, w.now()
	w.mu.Unlock()

	var dep myt.PlatformDeployment
	switch {
	case state == myt.JobSucceeded && j.Kind == myt.JobDestroy:
		zero := 0
		dep = myt.PlatformDeployment{Status: myt.StatusDestroyed, DeployedRevision: &zero, SetEndpoints: true}
	case state == myt.JobSucceeded:
		dep = myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &j.Revision}
	case j.Kind == myt.JobDestroy && !w.changed && j.Step(stepBackup) != nil && j.Step(stepBackup).State == myt.StepFailed:
		// The final backup failed: the destroy touched nothing.
		dep = myt.PlatformDeployment{Status: w.p.Status}
	case j.Kind == myt.JobBackup || j.Kind == myt.JobRestore:
		// The platform runs on; a failed restore says what it left.
		dep = myt.PlatformDeployment{Status: w.p.Status}
	case (state == myt.JobCancelled || j.Kind == myt.JobPublish) && !w.changed:
		// Nothing was touched (a publish the workers refused): the
		// platform is as it was.
		dep = myt.PlatformDeployment{Status: w.p.Status}
	default:
		dep = myt.PlatformDeployment{Status: myt.StatusFailed}
	}
	if e := w.r.cfg.Jobs.SetPlatformDeployment(ctx, j.PlatformID, dep); e != nil {
		w.r.log.Error("record platform status", "platform", j.PlatformID, "err", e)
	}
	if state == myt.JobSucceeded && (j.Kind == myt.JobDeploy || j.Kind == myt.JobUpdate || j.Kind == myt.JobPublish) && w.r.cfg.Code != nil {
		v := &myt.CodeVersion{PlatformID: j.PlatformID, Code: j.Design.Spec.Processing.Handler, Author: j.StartedBy, JobID: j.ID, JobKind: j.Kind}
		if added, e := w.r.cfg.Code.RecordCode(ctx, v); e != nil {
			w.r.log.Error("record code version", "platform", j.PlatformID, "err", e)
		} else if added {
			w.log.Printf("handler version %d recorded", v.Version)
		}
	}
	if state == myt.JobSucceeded && (j.Kind == myt.JobDeploy || j.Kind == myt.JobUpdate) && w.r.cfg.Devices != nil {
		w.reconcileDevices(ctx)
	}
	if err != nil {
		w.log.Printf("%s: %s", strings.ToUpper(state), j.Error)
		w.r.log.Warn("job ended", "job", j.ID, "platform", j.Platform, "state", state, "err", err)
	} else {
		w.log.Printf("SUCCEEDED: %s", j.Summary)
		w.r.log.Info("job ended", "job", j.ID, "platform", j.Platform, "state", state)
	}
	w.log.Close()
	w.save()
}

// userMessage is what a failed job says: a *myt.Error's message, else
// the error (tool errors are written for people already).
func userMessage(err error) string {
	var e *myt.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}

// pipeline runs the job's steps.
func (w *work) pipeline() error {
	provider := w.d.Spec.Target.Provider
	switch {
	case w.job.Kind == myt.JobPublish:
		return w.publish()
	case w.job.Kind == myt.JobBackup:
		return w.backupJob()
	case w.job.Kind == myt.JobRestore:
		return w.restoreJob()
	case w.job.Kind == myt.JobDestroy && w.cloud():
		return w.destroyCloud()
	case w.job.Kind == myt.JobDestroy && provider == myt.ProviderSSH:
		return w.destroySSH()
	case w.job.Kind == myt.JobDestroy:
		return w.destroyLocal()
	case w.cloud():
		return w.deployCloud()
	case provider == myt.ProviderSSH:
		return w.deploySSH()
	default:
		return w.deployLocal()
	}
}

// backupHook is where a final backup runs before a destroy: nothing is
// removed until it is stored and verified, unless the request declined
// it (finalBackup).
func (w *work) backupHook() error { return w.finalBackup() }

// lookPath finds a tool, preferring the configured path.
func lookPath(configured string, names ...string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("the configured %s is not there: %w", names[0], err)
		}
		return configured, nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", myt.Errorf(myt.EINVALID, "%s is not installed on the MyT server (run `myt doctor`).", strings.Join(names, " or "))
}
