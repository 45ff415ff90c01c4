package myt

import (
	"context"
	"slices"
	"time"
)

// Job kinds: what a job does to a platform.
const (
	// JobDeploy creates the platform's infrastructure and installs it.
	JobDeploy = "deploy"
	// JobUpdate applies a changed design to a deployed platform.
	JobUpdate = "update"
	// JobDestroy removes the platform's infrastructure; the data volume is
	// kept unless the job asks to delete it.
	JobDestroy = "destroy"
	// JobPublish swaps a new handler into a running platform's workers
	// (no other change): the design may differ from the deployed one in
	// its handler only. CodeService.PublishCode starts it.
	JobPublish = "publish"
)

// JobKinds lists every job kind.
var JobKinds = []string{JobDeploy, JobUpdate, JobDestroy, JobPublish, JobBackup, JobRestore}

// Job states. queued → planning → (awaiting-approval →) running → one of
// succeeded, failed, cancelled; a job that was active when the server
// stopped is interrupted.
const (
	JobQueued           = "queued"
	JobPlanning         = "planning"
	JobAwaitingApproval = "awaiting-approval"
	JobRunning          = "running"
	JobSucceeded        = "succeeded"
	JobFailed           = "failed"
	JobCancelled        = "cancelled"
	JobInterrupted      = "interrupted"
)

// JobStates lists every job state; the first four are active.
var JobStates = []string{JobQueued, JobPlanning, JobAwaitingApproval, JobRunning, JobSucceeded, JobFailed, JobCancelled, JobInterrupted}

// ActiveJobStates are the states of a job that still owns its platform.
var ActiveJobStates = JobStates[:4]

// JobActive reports whether a job in state still owns its platform.
func JobActive(state string) bool { return slices.Contains(ActiveJobStates, state) }

// Step states.
const (
	StepPending   = "pending"
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
)

// Job is one deploy, update or destroy of a platform.
type Job struct {
	ID         int64  `json:"id"`
	PlatformID int64  `json:"platformId"`
	Platform   string `json:"platform"`
	Kind       string `json:"kind"`
	State      string `json:"state"`
	// Revision is the design revision the job applies.
	Revision int `json:"revision"`
	// StartedBy is the user name of whoever asked for the job.
	StartedBy string     `json:"startedBy"`
	Created   time.Time  `json:"created"`
	Started   *time.Time `json:"started,omitempty"`
	Finished  *time.Time `json:"finished,omitempty"`
	// Error says why a failed job failed, in words for the user.
	Error string `json:"error,omitempty"`
	// Summary says what a finished job did ("nothing changed", ...).
	Summary string    `json:"summary,omitempty"`
	Steps   []JobStep `json:"steps"`
	// Plan is the infrastructure plan of a cloud job, once planned.
	Plan *Plan `json:"plan,omitempty"`
	// DeleteData marks a destroy that also deletes the data volume.
	DeleteData bool `json:"deleteData"`
	// UserID owns the job (the platform's owner); Design is the design
	// document it applies. Neither is shown.
	UserID int64   `json:"-"`
	Design *Design `json:"-"`
}

// Active reports whether the job still owns its platform.
func (j *Job) Active() bool { return JobActive(j.State) }

// Step returns the step named name, or nil.
func (j *Job) Step(name string) *JobStep {
	for i := range j.Steps {
		if j.Steps[i].Name == name {
			return &j.Steps[i]
		}
	}
	return nil
}

// JobStep is one step of a job's pipeline.
type JobStep struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Detail is the step's progress or outcome in words
	// ("12/17 resources", "task 23/41", "nothing changed").
	Detail string `json:"detail,omitempty"`
	// Done and Total count the step's units of work when known.
	Done     int        `json:"done,omitempty"`
	Total    int        `json:"total,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// Plan is what an infrastructure change will do, from the tool's plan.
type Plan struct {
	Add     int          `json:"add"`
	Change  int          `json:"change"`
	Destroy int          `json:"destroy"`
	Changes []PlanChange `json:"changes"`
	// ReplacesHost is set when the platform's machine is destroyed or
	// replaced; DestroysData when its data volume is.
	ReplacesHost bool `json:"replacesHost"`
	DestroysData bool `json:"destroysData"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return p.Add == 0 && p.Change == 0 && p.Destroy == 0 }

// PlanChange is one resource in a plan.
type PlanChange struct {
	Address string `json:"address"`
	Type    string `json:"type"`
	// Action is create, update, delete, replace or read.
	Action string `json:"action"`
	// Host and Data mark the platform's machine and its data volume.
	Host bool `json:"host,omitempty"`
	Data bool `json:"data,omitempty"`
}

// JobRequest asks for a job on a platform.
type JobRequest struct {
	Kind string `json:"kind"`
	// DeleteData (destroy only) deletes the data volume too. It needs
	// Confirm.
	DeleteData bool `json:"deleteData"`
	// Confirm is the platform's name, typed by the user: required to
	// delete data, and to approve a plan that destroys the data volume.
	Confirm string `json:"confirm,omitempty"`
	// AutoApprove applies a cloud plan without waiting in
	// awaiting-approval, unless the plan destroys data (the CLI's --yes).
	AutoApprove bool `json:"autoApprove"`
	// FinalBackup (destroy only) takes a backup of the database before
	// anything is removed; the destroy stops if it cannot be stored and
	// verified. nil means yes for a platform that was deployed (it has
	// data); false declines explicitly.
	FinalBackup *bool `json:"finalBackup,omitempty"`
	// Backup (restore only) is the backup to restore; the restore
	// replaces the platform's data and needs Confirm.
	Backup int64 `json:"backup,omitempty"`
	// Encrypt (backup only) encrypts the stored dump with a key sealed by
	// the server key.
	Encrypt bool `json:"encrypt,omitempty"`
	// Reason (backup only) is recorded on the backup; the API sets
	// "manual", the scheduler "schedule".
	Reason string `json:"-"`
}

// JobFilter selects jobs of the principal's platforms.
type JobFilter struct {
	PlatformID *int64
	// Limit caps the result (newest first); 0 means 50.
	Limit int
}

// LogChunk is a piece of a job's log. Seq increases by one per chunk.
type LogChunk struct {
	Seq  int64  `json:"seq"`
	Text string `json:"text"`
}

// JobService starts and follows jobs. Like PlatformService it acts only
// on the principal's own platforms: another user's job is ENOTFOUND.
type JobService interface {
	// StartJob queues a job on the platform. ECONFLICT, naming the
	// active job, when the platform already has one; EINVALID when the
	// kind does not fit the platform's status or a confirmation is
	// missing.
	StartJob(ctx context.Context, platformID int64, req JobRequest) (*Job, error)
	FindJobs(ctx context.Context, f JobFilter) ([]*Job, error)
	FindJobByID(ctx context.Context, id int64) (*Job, error)
	// ApproveJob lets a job waiting in awaiting-approval apply its plan.
	// confirm must be the platform's name when the plan destroys data.
	// ECONFLICT when the job is not awaiting approval.
	ApproveJob(ctx context.Context, id int64, confirm string) (*Job, error)
	// CancelJob stops an active job: its tools' process groups are
	// killed. ECONFLICT when the job has finished.
	CancelJob(ctx context.Context, id int64) (*Job, error)
	// JobLog returns the chunks after seq after; done reports that the
	// job has finished, so no chunk will follow the ones returned.
	JobLog(ctx context.Context, id int64, after int64) (chunks []LogChunk, done bool, err error)
	// WatchJob returns a channel that receives (without blocking the
	// sender; a missed value is harmless) whenever the job changes or
	// logs, and a function that stops the watch.
	WatchJob(ctx context.Context, id int64) (<-chan struct{}, func(), error)
}

// Endpoints are where a running platform is reached.
type Endpoints struct {
	// Address is the host's public address (IP or name).
	Address string `json:"address"`
	// MQTT, MQTTS, AMQP, AMQPS are URLs; empty when the design turns the
	// listener off.
	MQTT  string `json:"mqtt,omitempty"`
	MQTTS string `json:"mqtts,omitempty"`
	AMQP  string `json:"amqp,omitempty"`
	AMQPS string `json:"amqps,omitempty"`
	// Grafana is its HTTPS URL.
	Grafana string `json:"grafana,omitempty"`
	// DeviceUser is the shared device account; its password is a
	// platform secret shown on request.
	DeviceUser string `json:"deviceUser,omitempty"`
	// TopicPrefix is the first MQTT topic level devices publish under.
	TopicPrefix string `json:"topicPrefix,omitempty"`
	// CertificateExpires is the end of the server certificate the
	// broker and Grafana serve; an update within pki.RenewBefore of it
	// renews the certificate.
	CertificateExpires time.Time `json:"certificateExpires,omitzero"`
}

// StateLockedError is returned when a platform's infrastructure state is
// locked by another run. Info is the holder's lock information.
type StateLockedError struct{ Info string }

func (e *StateLockedError) Error() string { return "state locked by another run: " + e.Info }

// Secrets a user may reveal for a running platform, by name.
const (
	SecretGrafanaAdmin = "grafana_admin_password"
	SecretDevice       = "rabbitmq_device_password"
)

// ConnectionService gives a platform's owner what devices and people need
// to connect: the CA certificate and the revealable secrets.
type ConnectionService interface {
	// PlatformCA returns the platform's CA certificate (PEM). ENOTFOUND
	// before the first render or for another user's platform.
	PlatformCA(ctx context.Context, platformID int64) ([]byte, error)
	// PlatformSecret returns SecretGrafanaAdmin or SecretDevice.
	// EINVALID for another name; ENOTFOUND as PlatformCA.
	PlatformSecret(ctx context.Context, platformID int64, name string) (string, error)
}
