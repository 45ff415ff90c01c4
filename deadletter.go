package myt

import (
	"context"
	"time"
)

// DeadLetter is a message the platform's workers could not store (invalid
// JSON, a handler error, a value the database refused), waiting in the
// platform's dead-letter queue.
type DeadLetter struct {
	ID         string     `json:"id"`
	Reason     string     `json:"reason"`
	Detail     string     `json:"detail,omitempty"`
	RoutingKey string     `json:"routingKey"`
	Device     string     `json:"device"`
	DeadAt     *time.Time `json:"deadAt,omitempty"`
	// Body is the message as received, cut at 4 KiB (Truncated), base64
	// when it is not UTF-8 (Encoding "base64"); Size is its whole length.
	Body      string `json:"body"`
	Size      int    `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
	// Replays counts the times it was replayed and failed again.
	Replays int `json:"replays,omitempty"`
}

// DeadLetters is the oldest dead letters and how many wait in all.
type DeadLetters struct {
	Total int           `json:"total"`
	Items []*DeadLetter `json:"items"`
}

// DeadLetterReplay says what a replay did.
type DeadLetterReplay struct {
	Replayed  int `json:"replayed"`
	Remaining int `json:"remaining"`
}

// WorkerService acts on a running platform through its workers' API,
// reached on the platform host's loopback (over SSH for ssh and cloud
// hosts). Like PlatformService it acts only on the principal's own
// platforms; a platform that is not running is EINVALID.
type WorkerService interface {
	// TestCode runs code on samples (NDJSON lines) in the platform's
	// worker, beside the running handler, which it does not touch.
	// EINVALID with Python's error when the code does not load.
	TestCode(ctx context.Context, platformID int64, code, samples string) (*CodeTest, error)
	// DeadLetters lists up to limit of the oldest dead letters, leaving
	// them in the queue.
	DeadLetters(ctx context.Context, platformID int64, limit int) (*DeadLetters, error)
	// ReplayDeadLetters sends the dead letters through the current
	// handler again; those that fail again return to the queue.
	ReplayDeadLetters(ctx context.Context, platformID int64) (*DeadLetterReplay, error)
	// PurgeDeadLetters deletes every dead letter and returns how many.
	PurgeDeadLetters(ctx context.Context, platformID int64) (int, error)
}
