package myt

import (
	"context"
	"time"
)

// CodeVersion is one version of a platform's handler that ran on it: a
// successful deploy, update or publish whose handler differed from the
// version before records one.
type CodeVersion struct {
	PlatformID int64 `json:"-"`
	// Version counts from 1 per platform.
	Version int `json:"version"`
	// Code is the handler's source; empty is passthrough (no handler).
	Code string `json:"code"`
	// Author is the user who started the job that put it there.
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	// JobID and JobKind are that job (deploy, update or publish).
	JobID   int64  `json:"jobId"`
	JobKind string `json:"jobKind"`
	// Running marks the version the platform runs now (the newest).
	Running bool `json:"running"`
	// SameAs is the earlier version with the same code (a rollback), or 0.
	SameAs int `json:"sameAs,omitempty"`
}

// CodeService publishes a running platform's handler and keeps its
// versions. Like JobService it acts only on the principal's own
// platforms.
type CodeService interface {
	// PublishCode makes code the platform's handler and starts a publish
	// job that swaps it into every worker, losing and repeating no
	// message. EINVALID when the platform is not running, runs without a
	// handler (passthrough: an update adds one), has other design changes
	// waiting for an update, or already runs this code; ECONFLICT when a
	// job is active.
	PublishCode(ctx context.Context, platformID int64, code string) (*Job, error)
	// RollbackCode publishes an earlier version's code again; the platform
	// gets a new version that is the same as that one.
	RollbackCode(ctx context.Context, platformID int64, version int) (*Job, error)
	// FindCodeVersions lists the platform's versions, newest first.
	FindCodeVersions(ctx context.Context, platformID int64) ([]*CodeVersion, error)
	// FindCodeVersion returns one version; ENOTFOUND when there is none.
	FindCodeVersion(ctx context.Context, platformID int64, version int) (*CodeVersion, error)
}

// CodeTest is what a handler made of sample messages, tried in the
// platform's worker (never in MyT's server): per sample, the records it
// would store or why it would be dead-lettered.
type CodeTest struct {
	Results []CodeTestResult `json:"results"`
	Failed  int              `json:"failed"`
}

// CodeTestResult is one sample's outcome.
type CodeTestResult struct {
	// Line is the sample's line (or the dead letter's place in the list).
	Line    int              `json:"line"`
	Records []map[string]any `json:"records,omitempty"`
	Dropped bool             `json:"dropped,omitempty"`
	Reason  string           `json:"reason,omitempty"`
	Error   string           `json:"error,omitempty"`
}
