package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/myt-iot/myt"
)

// JobStore keeps jobs, their logs and what they record on platforms
// (sqlite.JobStore).
type JobStore interface {
	// CreateJob stores j and moves its platform to status; ECONFLICT
	// naming the active job when the platform has one.
	CreateJob(ctx context.Context, j *myt.Job, status string) error
	Job(ctx context.Context, id int64) (*myt.Job, error)
	Jobs(ctx context.Context, userID int64, f myt.JobFilter) ([]*myt.Job, error)
	SaveJob(ctx context.Context, j *myt.Job) error
	SetPlatformDeployment(ctx context.Context, platformID int64, d myt.PlatformDeployment) error
	// InterruptActive marks active jobs interrupted and returns them.
	InterruptActive(ctx context.Context) ([]*myt.Job, error)
	// DeployedDesign is the design the platform runs (ENOTFOUND when it
	// is not deployed).
	DeployedDesign(ctx context.Context, platformID int64) (*myt.Design, error)
	logStore
	Log(ctx context.Context, jobID, after int64, limit int) ([]myt.LogChunk, error)
}

// SecretStore keeps a platform's operational secrets, sealed with the
// server key (sqlite.PlatformSecrets). Get returns ENOTFOUND when absent.
type SecretStore interface {
	Get(ctx context.Context, platformID int64, name string) ([]byte, error)
	Put(ctx context.Context, platformID int64, name string, value []byte) error
}

// Tools says which programs a job runs and how.
type Tools struct {
	// Tofu is the OpenTofu or Terraform binary; empty looks up tofu, then
	// terraform, on PATH.
	Tofu string
	// TofuCLIConfig is a CLI configuration file (TF_CLI_CONFIG_FILE), for
	// example a provider mirror for sites without registry access.
	TofuCLIConfig string
	// InfraOverrides is HCL per provider written beside the module as
	// myt_provider_override.tf (custom endpoints, test settings).
	InfraOverrides map[string]string
	// Ansible is ansible-playbook; empty looks it up on PATH.
	Ansible string
	// Docker is the docker CLI (local targets, image archives); empty
	// looks it up on PATH.
	Docker string
	// WorkerBinaries maps a Linux architecture (GOARCH: amd64, arm64) to
	// a myt binary of this version for hosts of that architecture. The
	// running binary serves its own when it is a Linux one.
	WorkerBinaries map[string]string
	// ComposeEnv is extra environment for docker compose on every
	// platform, for example MYT_IMAGE_* image overrides.
	ComposeEnv map[string]string
	// ShipImages copies every image named in ComposeEnv to hosts as an
	// archive (docker save → copy → docker load), for hosts that reach no
	// registry.
	ShipImages bool
	// Env is extra environment for every tool (for example DOCKER_HOST).
	Env map[string]string
	// AnsibleVars are extra variables for every playbook run (for example
	// myt_apt_update_cache: false on hosts without an apt mirror, or
	// docker_apt_repository); the job's own variables win.
	AnsibleVars map[string]any
}

// Config wires a Runner.
type Config struct {
	Jobs        JobStore
	States      StateStore
	Secrets     SecretStore
	Platforms   myt.PlatformService
	Credentials myt.CredentialService
	// Code keeps handler versions; nil records none.
	Code CodeStore
	// Backups keeps the record of backups (their files are in
	// DataDir/backups); nil takes none.
	Backups BackupStore
	Tools   Tools
	// DataDir holds job directories (jobs/), image archives (images/),
	// the plugin cache and local platforms (platforms/).
	DataDir string
	Logger  *slog.Logger
	// Timeouts; zero means the default.
	SSHTimeout    time.Duration // a host to answer SSH (10 min)
	HealthTimeout time.Duration // every service healthy after install (5 min)
	Now           func() time.Time
	// Devices re-applies a platform's devices after each successful
	// deploy and update; nil skips that.
	Devices DeviceReconciler
}

// Runner runs jobs. It implements myt.JobService.
type Runner struct {
	cfg   Config
	log   *slog.Logger
	state *StateServer
	ctx   context.Context // ends at Close
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu      sync.Mutex
	active  map[int64]*work
	watches map[int64]map[chan struct{}]struct{}
	// doctor remembers when each provider's tools last passed the check:
	// a tool's --version can take seconds, and every job start asks. A
	// failed check is not remembered, so a tool just installed counts.
	doctor map[string]time.Time
}

// toolsMissing returns the first tool the provider needs that is missing
// or too old, or nil.
func (r *Runner) toolsMissing(ctx context.Context, provider string) *Check {
	r.mu.Lock()
	at, ok := r.doctor[provider]
	r.mu.Unlock()
	if ok && time.Since(at) < time.Minute {
		return nil
	}
	failed := Need(Doctor(ctx, r.cfg.Tools, provider), provider)
	if failed == nil {
		r.mu.Lock()
		r.doctor[provider] = time.Now()
		r.mu.Unlock()
	}
	return failed
}

var _ myt.JobService = (*Runner)(nil)

// WorkerArchs are the host architectures (GOARCH) a deploy ships a worker
// binary for.
var WorkerArchs = []string{"amd64", "arm64"}

// InstalledWorkerBinaries returns the worker binaries that come with the
// myt executable exe, running on goos/goarch: exe itself for its own
// architecture when it is a Linux binary, and for every architecture in
// WorkerArchs the file lib/myt/worker/linux-ARCH/myt beside exe's bin
// directory, when it exists (symbolic links in exe resolved first). That
// is where a release puts them: /usr/bin/myt and /usr/lib/myt/worker/...
// in the .deb and .rpm, bin/myt and lib/myt/worker/... in an archive, so
// that a deploy from a macOS laptop or to a host of another architecture
// finds a binary without a deploy config.
func InstalledWorkerBinaries(exe, goos, goarch string) map[string]string {
	out := map[string]string{}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	prefix := filepath.Dir(filepath.Dir(exe))
	for _, arch := range WorkerArchs {
		p := filepath.Join(prefix, "lib", "myt", "worker", "linux-"+arch, "myt")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			out[arch] = p
		}
	}
	if goos == "linux" {
		out[goarch] = exe
	}
	return out
}

// New starts a Runner: jobs left active by a previous process are marked
// interrupted (their state locks released, their job directories, which
// may hold secrets, removed), and the state backend starts listening.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SSHTimeout == 0 {
		cfg.SSHTimeout = 10 * time.Minute
	}
	if cfg.HealthTimeout == 0 {
		cfg.HealthTimeout = 5 * time.Minute
	}
	if cfg.Tools.WorkerBinaries == nil {
		cfg.Tools.WorkerBinaries = map[string]string{}
	}
	if exe, err := os.Executable(); err == nil {
		for arch, p := range InstalledWorkerBinaries(exe, runtime.GOOS, runtime.GOARCH) {
			if _, ok := cfg.Tools.WorkerBinaries[arch]; !ok {
				cfg.Tools.WorkerBinaries[arch] = p
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "jobs"), 0o700); err != nil {
		return nil, err
	}
	stale, err := cfg.Jobs.InterruptActive(ctx)
	if err != nil {
		return nil, fmt.Errorf("mark interrupted jobs: %w", err)
	}
	for _, j := range stale {
		cfg.Logger.Warn("job interrupted by a restart", "job", j.ID, "platform", j.Platform, "kind", j.Kind)
		if err := cfg.States.Unlock(ctx, j.PlatformID, ""); err != nil {
			return nil, fmt.Errorf("release the state lock of platform %d: %w", j.PlatformID, err)
		}
		if j.Kind == myt.JobBackup {
			// A backup changes nothing on the platform, which ran.
			if err := cfg.Jobs.SetPlatformDeployment(ctx, j.PlatformID, myt.PlatformDeployment{Status: myt.StatusRunning}); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Backups != nil {
		// A backup being written when the server stopped is incomplete:
		// never listed as good, and its part file goes.
		files, err := cfg.Backups.FailRunning(ctx)
		if err != nil {
			return nil, fmt.Errorf("mark unfinished backups failed: %w", err)
		}
		for _, f := range files {
			cfg.Logger.Warn("backup left unfinished by a restart: marked failed", "file", f)
			_ = os.Remove(filepath.Join(cfg.DataDir, f) + partSuffix)
			_ = os.Remove(filepath.Join(cfg.DataDir, f))
		}
	}
	// No job runs yet: whatever lies in jobs/ was left by a killed
	// process, and may hold secrets.
	if ents, err := os.ReadDir(filepath.Join(cfg.DataDir, "jobs")); err == nil {
		for _, e := range ents {
			_ = os.RemoveAll(filepath.Join(cfg.DataDir, "jobs", e.Name()))
		}
	}
	st, err := NewStateServer(cfg.States, cfg.Logger.With("component", "state"))
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	return &Runner{
		cfg: cfg, log: cfg.Logger, state: st, ctx: rctx, stop: stop,
		active: map[int64]*work{}, watches: map[int64]map[chan struct{}]struct{}{}, doctor: map[string]time.Time{},
	}, nil
}

// Close cancels running jobs (they end interrupted), waits for them and
// stops the state backend.
func (r *Runner) Close() error {
	r.stop()
	r.wg.Wait()
	return r.state.Close()
}

// owned returns the job when the principal owns its platform.
func (r *Runner) owned(ctx context.Context, id int64) (*myt.Job, *myt.Platform, error) {
	j, err := r.cfg.Jobs.Job(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p, err := r.cfg.Platforms.FindPlatformByID(ctx, j.PlatformID)
	if myt.ErrorCode(err) == myt.ENOTFOUND {
		return nil, nil, myt.Errorf(myt.ENOTFOUND, "Job not found.")
	} else if err != nil {
		return nil, nil, err
	}
	return j, p, nil
}

// FindJobs implements myt.JobService.
func (r *Runner) FindJobs(ctx context.Context, f myt.JobFilter) ([]*myt.Job, error) {
	u := myt.UserFromContext(ctx)
	if u == nil {
		return nil, myt.Errorf(myt.EUNAUTHORIZED, "Please sign in.")
	}
	if f.PlatformID != nil {
		if _, err := r.cfg.Platforms.FindPlatformByID(ctx, *f.PlatformID); err != nil {
			return nil, err
		}
	}
	return r.cfg.Jobs.Jobs(ctx, u.ID, f)
}

// FindJobByID implements myt.JobService.
func (r *Runner) FindJobByID(ctx context.Context, id int64) (*myt.Job, error) {
	j, _, err := r.owned(ctx, id)
	return j, err
}

// JobLog implements myt.JobService.
func (r *Runner) JobLog(ctx context.Context, id int64, after int64) ([]myt.LogChunk, bool, error) {
	j, _, err := r.owned(ctx, id)
	if err != nil {
		return nil, false, err
	}
	// The state first: a job seen finished has stored its whole log.
	done := !j.Active()
	chunks, err := r.cfg.Jobs.Log(ctx, id, after, 0)
	if err != nil {
		return nil, false, err
	}
	if len(chunks) == 1000 {
		done = false // more to read
	}
	return chunks, done, nil
}

// WatchJob implements myt.JobService.
func (r *Runner) WatchJob(ctx context.Context, id int64) (<-chan struct{}, func(), error) {
	if _, _, err := r.owned(ctx, id); err != nil {
		return nil, nil, err
	}
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	if r.watches[id] == nil {
		r.watches[id] = map[chan struct{}]struct{}{}
	}
	r.watches[id][ch] = struct{}{}
	r.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.watches[id], ch)
			if len(r.watches[id]) == 0 {
				delete(r.watches, id)
			}
			r.mu.Unlock()
		})
	}, nil
}

func (r *Runner) notify(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.watches[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// CancelJob implements myt.JobService.
func (r *Runner) CancelJob(ctx context.Context, id int64) (*myt.Job, error) {
	j, _, err := r.owned(ctx, id)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	w := r.active[id]
	r.mu.Unlock()
	if w == nil || !j.Active() {
		return nil, myt.Errorf(myt.ECONFLICT, "Job %d has finished (%s); there is nothing to cancel.", id, j.State)
	}
	w.cancelByUser()
	<-w.done
	return r.cfg.Jobs.Job(ctx, id)
}

// ApproveJob implements myt.JobService.
func (r *Runner) ApproveJob(ctx context.Context, id int64, confirm string) (*myt.Job, error) {
	j, p, err := r.owned(ctx, id)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	w := r.active[id]
	r.mu.Unlock()
	if w == nil || j.State != myt.JobAwaitingApproval {
		return nil, myt.Errorf(myt.ECONFLICT, "Job %d is %s, not awaiting approval.", id, j.State)
	}
	if j.Plan != nil && j.Plan.DestroysData && confirm != p.Name {
		return nil, &myt.Error{Code: myt.EINVALID, Message: "This plan destroys the platform's data volume: type the platform's name to approve it.",
			Fields: []myt.FieldError{{Field: "confirm", Message: fmt.Sprintf("must be %q", p.Name)}}}
	}
	select {
	case w.approved <- struct{}{}:
	default:
		return nil, myt.Errorf(myt.ECONFLICT, "Job %d is already approved.", id)
	}
	// Wait until the job has left awaiting-approval, so the answer shows
	// the new state.
	deadline := time.After(10 * time.Second)
	for {
		j, err = r.cfg.Jobs.Job(ctx, id)
		if err != nil || j.State != myt.JobAwaitingApproval {
			return j, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return j, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartJob implements myt.JobService.
func (r *Runner) StartJob(ctx context.Context, platformID int64, req myt.JobRequest) (*myt.Job, error) {
	a := myt.AuthFromContext(ctx)
	if a == nil || a.User == nil {
		return nil, myt.Errorf(myt.EUNAUTHORIZED, "Please sign in.")
	}
	p, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	if err := checkRequest(p, req); err != nil {
		return nil, err
	}
	if req.Kind == myt.JobPublish {
		if err := r.checkPublish(ctx, p, p.Design); err != nil {
			return nil, err
		}
	}
	if req.Kind == myt.JobRestore {
		if err := r.checkRestore(ctx, p, req.Backup); err != nil {
			return nil, err
		}
	}
	if (req.Kind == myt.JobBackup || req.Kind == myt.JobRestore) && r.cfg.Backups == nil {
		return nil, myt.Errorf(myt.EINVALID, "This MyT server keeps no backups.")
	}
	if r.ctx.Err() != nil {
		return nil, myt.Errorf(myt.ECONFLICT, "MyT is shutting down; start the job again once it is back.")
	}
	if c := r.toolsMissing(ctx, p.Design.Spec.Target.Provider); c != nil {
		return nil, myt.Errorf(myt.EINVALID, "The MyT server cannot run this job: %s (%s). To fix: %s.", c.Tool, c.Problem, c.Fix)
	}
	// The credential is opened now, with the user's key, and lives only
	// in this job's memory.
	cred, secret, err := r.openCredential(ctx, p.Design)
	if err != nil {
		return nil, err
	}
	j := &myt.Job{
		PlatformID: p.ID, Platform: p.Name, UserID: a.User.ID, Kind: req.Kind, State: myt.JobQueued,
		Revision: p.Revision, Design: p.Design, StartedBy: a.User.Username, DeleteData: req.DeleteData,
	}
	j.Steps = stepsFor(p.Design.Spec.Target.Provider, req.Kind)
	status := myt.StatusDeploying
	switch req.Kind {
	case myt.JobDestroy:
		status = myt.StatusDestroying
	case myt.JobBackup, myt.JobRestore:
		status = p.Status // the platform runs on
	}
	if err := r.cfg.Jobs.CreateJob(ctx, j, status); err != nil {
		return nil, err
	}
	w := r.newWork(j, p, req, cred, secret)
	r.mu.Lock()
	r.active[j.ID] = w
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		w.execute()
		r.mu.Lock()
		delete(r.active, j.ID)
		r.mu.Unlock()
		close(w.done)
		r.notify(j.ID)
	}()
	r.log.Info("job started", "job", j.ID, "platform", p.Name, "kind", j.Kind, "user", a.User.Username)
	return j, nil
}

// checkRequest says whether the job fits the platform.
func checkRequest(p *myt.Platform, req myt.JobRequest) error {
	field := func(name, msg string) error {
		return &myt.Error{Code: myt.EINVALID, Message: "The job cannot start.", Fields: []myt.FieldError{{Field: name, Message: msg}}}
	}
	switch req.Kind {
	case myt.JobDeploy:
	case myt.JobUpdate:
		if p.DeployedRevision == 0 {
			return myt.Errorf(myt.EINVALID, "Platform %s is not deployed: deploy it first.", p.Name)
		}
	case myt.JobPublish: // checkPublish
	case myt.JobBackup, myt.JobRestore:
		if p.Status != myt.StatusRunning || p.DeployedRevision == 0 {
			return myt.Errorf(myt.EINVALID, "Platform %s is %s: a %s needs it running.", p.Name, p.Status, req.Kind)
		}
		if req.Kind == myt.JobRestore && req.Confirm != p.Name {
			return field("confirm", fmt.Sprintf("a restore replaces every record in the %s database of %s: type the platform's name, %q", p.Design.Spec.Database.Kind, p.Name, p.Name))
		}
	case myt.JobDestroy:
		if p.Status == myt.StatusDesigned || p.Status == myt.StatusDestroyed {
			return myt.Errorf(myt.EINVALID, "Platform %s is %s: there is nothing to destroy.", p.Name, p.Status)
		}
	default:
		return field("kind", fmt.Sprintf("%q given; allowed: deploy, update, destroy, publish, backup, restore", req.Kind))
	}
	if req.DeleteData && req.Kind != myt.JobDestroy {
		return field("deleteData", "only a destroy deletes data")
	}
	if req.FinalBackup != nil && req.Kind != myt.JobDestroy {
		return field("finalBackup", "only a destroy takes a final backup")
	}
	if req.Backup != 0 && req.Kind != myt.JobRestore {
		return field("backup", "only a restore reads a backup")
	}
	if req.Encrypt && req.Kind != myt.JobBackup && req.Kind != myt.JobDestroy {
		return field("encrypt", "only a backup is encrypted")
	}
	if req.DeleteData && req.Confirm != p.Name {
		return field("confirm", fmt.Sprintf("deleting the data needs the platform's name typed: %q", p.Name))
	}
	return nil
}

// openCredential finds and opens the design's credential (none for
// local).
func (r *Runner) openCredential(ctx context.Context, d *myt.Design) (*myt.Credential, myt.Secret, error) {
	t := d.Spec.Target
	if t.Provider == myt.ProviderLocal {
		return nil, nil, nil
	}
	name := t.Credentials
	cs, err := r.cfg.Credentials.FindCredentials(ctx, myt.CredentialFilter{Name: &name})
	if err != nil {
		return nil, nil, err
	}
	if len(cs) == 0 {
		return nil, nil, &myt.Error{Code: myt.EINVALID, Message: "The platform's credential is gone.",
			Fields: []myt.FieldError{{Field: "spec.target.credentials", Message: fmt.Sprintf("%q given; you have no saved credential of that name", name)}}}
	}
	secret, err := r.cfg.Credentials.OpenCredential(ctx, cs[0].ID)
	if err != nil {
		return nil, nil, err
	}
	return cs[0], secret, nil
}

// Steps of each pipeline.
const (
	stepRender   = "render"
	stepInit     = "init"
	stepPlan     = "plan"
	stepApproval = "approval"
	stepApply    = "apply"
	stepOutputs  = "outputs"
	stepConnect  = "connect"
	stepAnsible  = "ansible"
	stepImage    = "worker image"
	stepCompose  = "compose"
	stepHealth   = "health"
	stepEndpoint = "endpoints"
	stepBackup   = "backup"
	stepRemove   = "remove"
	stepPublish  = "publish"
)

func stepsFor(provider, kind string) []myt.JobStep {
	var names []string
	cloud := provider != myt.ProviderSSH && provider != myt.ProviderLocal
	switch {
	case kind == myt.JobPublish && cloud:
		names = []string{stepRender, stepConnect, stepPublish, stepHealth}
	case kind == myt.JobPublish && provider == myt.ProviderSSH:
		names = []string{stepConnect, stepPublish, stepHealth}
	case kind == myt.JobPublish:
		names = []string{stepPublish, stepHealth}
	case (kind == myt.JobBackup || kind == myt.JobRestore) && cloud:
		names = []string{stepRender, stepConnect, kind}
	case (kind == myt.JobBackup || kind == myt.JobRestore) && provider == myt.ProviderSSH:
		names = []string{stepConnect, kind}
	case kind == myt.JobBackup || kind == myt.JobRestore:
		names = []string{kind}
	case kind == myt.JobDestroy && cloud:
		names = []string{stepBackup, stepRender, stepInit, stepPlan, stepApproval, stepApply}
	case kind == myt.JobDestroy && provider == myt.ProviderSSH:
		names = []string{stepBackup, stepConnect, stepRemove}
	case kind == myt.JobDestroy:
		names = []string{stepBackup, stepRemove}
	case cloud:
		names = []string{stepRender, stepInit, stepPlan, stepApproval, stepApply, stepOutputs, stepConnect, stepAnsible, stepHealth, stepEndpoint}
	case provider == myt.ProviderSSH:
		names = []string{stepRender, stepConnect, stepAnsible, stepHealth, stepEndpoint}
	default:
		names = []string{stepRender, stepImage, stepCompose, stepHealth, stepEndpoint}
	}
	steps := make([]myt.JobStep, len(names))
	for i, n := range names {
		steps[i] = myt.JobStep{Name: n, State: myt.StepPending}
	}
	return steps
}

// errCancelled ends a job the user cancelled.
var errCancelled = errors.New("cancelled")
