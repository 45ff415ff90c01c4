package myt

import (
	"context"
	"time"
)

// Platform statuses. A platform starts designed; deploy, update and
// destroy jobs move it along: deploying (or destroying) while a job works,
// then running, failed or destroyed.
const (
	StatusDesigned   = "designed"
	StatusDeploying  = "deploying"
	StatusRunning    = "running"
	StatusFailed     = "failed"
	StatusDestroying = "destroying"
	StatusDestroyed  = "destroyed"
)

// Platform is a user's platform: its design and where it is in its life.
type Platform struct {
	ID      int64     `json:"id"`
	UserID  int64     `json:"-"`
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	Design  *Design   `json:"design"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Revision counts design changes, starting at 1.
	Revision int `json:"revision"`
	// DeployedRevision is the design revision running on the target: 0
	// before the first successful deploy and after a destroy.
	DeployedRevision int `json:"deployedRevision"`
	// Endpoints say where the running platform is reached.
	Endpoints *Endpoints `json:"endpoints,omitempty"`
}

// PlatformFilter selects platforms of the principal.
type PlatformFilter struct {
	Name *string
}

// PlatformService stores platforms. Like CredentialService it acts only on
// the principal's own platforms: another user's id is ENOTFOUND.
type PlatformService interface {
	// CreatePlatform validates d (EINVALID), checks that the credential it
	// names exists and fits the provider (EINVALID on
	// spec.target.credentials) and stores it with status designed.
	// ECONFLICT when the name is taken.
	CreatePlatform(ctx context.Context, d *Design) (*Platform, error)
	FindPlatforms(ctx context.Context, f PlatformFilter) ([]*Platform, error)
	FindPlatformByID(ctx context.Context, id int64) (*Platform, error)
	// UpdatePlatform replaces the design of a platform that is not being
	// deployed or destroyed; the name cannot change (EINVALID).
	UpdatePlatform(ctx context.Context, id int64, d *Design) (*Platform, error)
	DeletePlatform(ctx context.Context, id int64) error
}

// PlatformDeployment is what a job records on its platform.
type PlatformDeployment struct {
	Status string
	// DeployedRevision, when not nil, replaces the deployed revision.
	DeployedRevision *int
	// Endpoints replace the platform's when SetEndpoints (nil clears
	// them).
	Endpoints    *Endpoints
	SetEndpoints bool
}

// NewPlatformChecker is a PlatformService's optional ability to say what
// would stop a design from becoming a new platform (a missing credential,
// a taken name), saving nothing: callers add it to a document's own
// errors, so that every problem comes in one answer.
type NewPlatformChecker interface {
	CheckNewPlatform(ctx context.Context, d *Design) error
}
