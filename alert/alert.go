// Package alert evaluates alert rules against each poll of the monitor
// and notifies a platform's channels (webhooks, email) when a rule fires
// and when it resolves.
//
// An Engine is handed every poll (monitor.Poller.OnPoll calls
// Engine.Enqueue; Engine.Run evaluates them in order). Each rule is a
// small state machine, ok → pending → firing → ok, kept in the Store so a
// restart neither fires again nor forgets: exactly one Event is recorded
// and sent per change of state (fired, resolved). A condition must hold
// for the rule's For to fire and be clear for its ClearFor to resolve, so
// a flapping component does not make a storm.
//
// The Store is implemented by the sqlite package (sqlite.AlertStore);
// Service is what the API and the web UI use: the same operations on
// behalf of a signed-in user, on their own platforms only. See
// docs/alert.md.
package alert

import (
	"context"
	"time"
)

// Kind is what a rule watches.
type Kind string

const (
	// KindDown counts the components down (up_* gauges at 0), of
	// Rule.Component only when set.
	KindDown Kind = "component-down"
	// KindQueueDepth is the ingest queue's ready messages.
	KindQueueDepth Kind = "queue-depth"
	// KindDeadLetters is messages dead-lettered per minute, every worker,
	// from the counters' increase between two polls.
	KindDeadLetters Kind = "dead-letters"
	// KindDisk is the data directory's disk use, in percent.
	KindDisk Kind = "disk"
	// KindCertificate is the days left before the platform's server
	// certificate (broker, Grafana) expires; it holds when BELOW the
	// threshold.
	KindCertificate Kind = "certificate"
)

// State is a rule's state.
type State string

const (
	StateOK      State = "ok"      // the condition does not hold
	StatePending State = "pending" // it holds, for less than For
	StateFiring  State = "firing"  // it held for For; notified
)

// Event states: what a notification says.
const (
	Fired    = "firing"
	Resolved = "resolved"
)

// Delivery outcomes.
const (
	Delivered = "delivered"
	Failed    = "failed"
)

// Rule is one alert rule of a platform: it fires when its value is above
// Threshold (below, for KindCertificate) for For, and resolves when it is
// not for ClearFor.
type Rule struct {
	ID         int64
	PlatformID int64
	Name       string
	Kind       Kind
	// Component limits KindDown to one component ("database"); empty
	// watches every component.
	Component string
	Threshold float64
	For       time.Duration
	ClearFor  time.Duration
	Enabled   bool

	State State
	// Since is when the condition began to hold (pending, firing).
	Since time.Time
	// ClearSince is when a firing rule's condition stopped holding.
	ClearSince time.Time
	// Value is the value at the last change of state.
	Value float64
}

// Defaults are the rules a platform gets when it is first seen running.
func Defaults() []Rule {
	return []Rule{
		{Name: "component-down", Kind: KindDown, Threshold: 0, For: 2 * time.Minute, ClearFor: time.Minute, Enabled: true},
		{Name: "queue-depth", Kind: KindQueueDepth, Threshold: 10000, For: 5 * time.Minute, ClearFor: time.Minute, Enabled: true},
		{Name: "dead-letters", Kind: KindDeadLetters, Threshold: 10, For: 5 * time.Minute, ClearFor: 5 * time.Minute, Enabled: true},
		{Name: "disk", Kind: KindDisk, Threshold: 90, For: 5 * time.Minute, ClearFor: 5 * time.Minute, Enabled: true},
		{Name: "certificate", Kind: KindCertificate, Threshold: 30, Enabled: true},
	}
}

// Event is one change of state of a rule.
type Event struct {
	ID         int64   `json:"id"`
	PlatformID int64   `json:"platformId"`
	RuleID     int64   `json:"ruleId,omitempty"`
	Rule       string  `json:"rule"`
	Kind       Kind    `json:"kind"`
	State      string  `json:"state"` // Fired or Resolved
	Value      float64 `json:"value"`
	Threshold  float64 `json:"threshold"`
	// Since is when the condition began to hold (fired) or stopped
	// holding (resolved); At is when the change was decided.
	Since time.Time `json:"since"`
	At    time.Time `json:"at"`
	// Detail names what is wrong ("database: no answer"), never a secret.
	Detail     string     `json:"detail,omitempty"`
	Deliveries []Delivery `json:"deliveries"`
}

// Delivery is the outcome of sending an event to a channel.
type Delivery struct {
	ChannelID int64     `json:"channelId"`
	Status    string    `json:"status"` // Delivered or Failed
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"`
}

// ChannelKind is how a channel is notified.
type ChannelKind string

const (
	// ChannelWebhook POSTs the JSON Payload, signed when it has a secret.
	ChannelWebhook ChannelKind = "webhook"
	// ChannelEmail mails its recipients through the server's SMTP relay.
	ChannelEmail ChannelKind = "email"
)

// MaxRecipients bounds an email channel's addresses.
const MaxRecipients = 20

// Channel is where a platform's notifications go. A webhook's URL and
// signing secret are sealed in the store, never listed: Target is only
// the URL's host. An email channel's recipients are not secret.
type Channel struct {
	ID         int64       `json:"id"`
	PlatformID int64       `json:"platformId"`
	Name       string      `json:"name"`
	Kind       ChannelKind `json:"kind"`
	// Signed says a webhook has a secret: requests carry
	// X-MyT-Signature.
	Signed bool `json:"signed"`
	// Host is a webhook's host (its URL's other parts may hold a token).
	Host string `json:"host,omitempty"`
	// To are an email channel's recipients.
	To      []string  `json:"to,omitempty"`
	Created time.Time `json:"created"`
}

// Webhook is a channel's sealed part.
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// Store keeps rules, channels and the history. Implementations are safe
// for concurrent use; an unknown platform, rule or channel (or one of
// another platform) is myt.ENOTFOUND; invalid input is myt.EINVALID
// naming the field. The Store does not check who asks: Service does.
type Store interface {
	// EnsureDefaults creates rules for the platform the first time it is
	// called for it, and does nothing after (even once they are deleted).
	EnsureDefaults(ctx context.Context, platformID int64, rules []Rule) error
	// Rules lists the platform's rules.
	Rules(ctx context.Context, platformID int64) ([]Rule, error)
	// UpdateRule stores the rule's Enabled, Threshold, For and ClearFor.
	// Disabling a rule resets its state to ok (no event).
	UpdateRule(ctx context.Context, r Rule) error
	// SaveState stores the rule's State, Since, ClearSince and Value and,
	// when ev is not nil, records ev (setting its ID) in the same
	// transaction, not yet dispatched.
	SaveState(ctx context.Context, r Rule, ev *Event) error
	// AddChannel adds a webhook channel, sealing w.
	AddChannel(ctx context.Context, platformID int64, name string, w Webhook) (Channel, error)
	// AddEmailChannel adds an email channel to the addresses to.
	AddEmailChannel(ctx context.Context, platformID int64, name string, to []string) (Channel, error)
	// Channels lists the platform's channels.
	Channels(ctx context.Context, platformID int64) ([]Channel, error)
	// Channel is one channel of the platform.
	Channel(ctx context.Context, platformID, channelID int64) (Channel, error)
	// UpdateChannel stores c's Name (and To, for email); w, when not nil,
	// replaces a webhook's sealed URL and secret.
	UpdateChannel(ctx context.Context, c Channel, w *Webhook) (Channel, error)
	// DeleteChannel deletes the channel, its sealed part and its
	// deliveries.
	DeleteChannel(ctx context.Context, platformID, channelID int64) error
	// Webhook opens the channel's sealed URL and secret.
	Webhook(ctx context.Context, c Channel) (Webhook, error)
	// RecordDelivery records the outcome of sending an event.
	RecordDelivery(ctx context.Context, eventID int64, d Delivery) error
	// MarkDispatched records that the event was sent to every channel
	// (or that there was none): it is not sent again at start.
	MarkDispatched(ctx context.Context, eventID int64) error
	// Undispatched lists the events of every platform not yet marked
	// dispatched, oldest first, with their deliveries so far: those a
	// crash cut short.
	Undispatched(ctx context.Context) ([]Event, error)
	// Events lists the platform's events older than the event before
	// (every event when before is 0), newest first, with their
	// deliveries; at most limit.
	Events(ctx context.Context, platformID, before int64, limit int) ([]Event, error)
	// PlatformName is the platform's name, for notifications.
	PlatformName(ctx context.Context, platformID int64) (string, error)
	// CertificateExpires is the end of the platform's server
	// certificate; zero when it has none recorded.
	CertificateExpires(ctx context.Context, platformID int64) (time.Time, error)
}
