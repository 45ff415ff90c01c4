package alert

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/myt-iot/myt/monitor"
)

// Engine evaluates the rules of every platform against its polls and
// delivers the resulting events. Observe evaluates one poll; Enqueue and
// Run do the same off the poller's goroutine.
type Engine struct {
	Store Store
	// Client sends webhooks (a client with no proxy and a 10 s timeout
	// when nil).
	Client *http.Client
	// SMTP is the relay of email channels; nil fails their deliveries
	// with a message saying so.
	SMTP *SMTP
	// Attempts bounds the tries per delivery (3 when zero); Backoff is
	// the wait before the second try, doubled before each next one (1 s
	// when zero); Timeout bounds one try (10 s when zero).
	Attempts int
	Backoff  time.Duration
	Timeout  time.Duration
	Log      *slog.Logger
	Now      func() time.Time
	// Sleep waits between tries (a timer on ctx when nil); tests
	// replace it to run without waiting.
	Sleep func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	seen     map[int64]bool     // platforms whose defaults are ensured
	counters map[int64]counters // the last poll's dead-letter counters
	queue    chan poll
	once     sync.Once
}

type counters struct {
	at   time.Time
	vals map[string]float64
}

type poll struct {
	platformID int64
	at         time.Time
	r          monitor.Reading
}

// queueSize bounds the polls waiting for Run; a poll that finds it full
// is dropped (and logged): the next one is evaluated instead.
const queueSize = 256

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) q() chan poll {
	e.once.Do(func() { e.queue = make(chan poll, queueSize) })
	return e.queue
}

// Enqueue hands a poll to Run without waiting: it is monitor.Poller's
// OnPoll.
func (e *Engine) Enqueue(platformID int64, at time.Time, r monitor.Reading) {
	select {
	case e.q() <- poll{platformID, at, r}:
	default:
		e.log().Warn("alert queue full: poll dropped", "platform", platformID)
	}
}

// Run first sends the events a crash left undelivered (Redeliver), then
// evaluates enqueued polls one at a time, in order, until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	if err := e.Redeliver(ctx); err != nil && ctx.Err() == nil {
		e.log().Error("redeliver alert events", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-e.q():
			if err := e.Observe(ctx, p.platformID, p.at, p.r); err != nil && ctx.Err() == nil {
				e.log().Error("evaluate alert rules", "platform", p.platformID, "err", err)
			}
		}
	}
}

// Observe evaluates the platform's rules against a poll taken at at,
// records every change of state and delivers it to the platform's
// channels before returning. The platform's default rules are created
// the first time it is observed.
func (e *Engine) Observe(ctx context.Context, platformID int64, at time.Time, r monitor.Reading) error {
	e.mu.Lock()
	if e.seen == nil {
		e.seen, e.counters = map[int64]bool{}, map[int64]counters{}
	}
	seen := e.seen[platformID]
	rate, rateOK := e.deadLetterRate(platformID, at, r.Samples)
	e.mu.Unlock()
	if !seen {
		if err := e.Store.EnsureDefaults(ctx, platformID, Defaults()); err != nil {
			return err
		}
		e.mu.Lock()
		e.seen[platformID] = true
		e.mu.Unlock()
	}
	rules, err := e.Store.Rules(ctx, platformID)
	if err != nil {
		return err
	}
	var events []*Event
	var certEnd *time.Time
	for _, rule := range rules {
		if !rule.Enabled {
			continue
		}
		v, detail, ok := value(rule, r, rate, rateOK)
		holds := v > rule.Threshold
		if rule.Kind == KindCertificate {
			if certEnd == nil {
				end, err := e.Store.CertificateExpires(ctx, platformID)
				if err != nil {
					return err
				}
				certEnd = &end
			}
			ok = !certEnd.IsZero()
			v = certEnd.Sub(at).Hours() / 24
			holds = v < rule.Threshold
			detail = fmt.Sprintf("the server certificate expires on %s (%.1f days)", certEnd.UTC().Format("2006-01-02 15:04 MST"), v)
		}
		if !ok {
			continue // nothing known this poll: the state stands
		}
		next, ev := Step(rule, holds, v, at)
		if next == rule {
			continue
		}
		if ev != nil {
			ev.Detail = detail
		}
		if err := e.Store.SaveState(ctx, next, ev); err != nil {
			return err
		}
		if ev != nil {
			e.log().Info("alert "+ev.State, "platform", platformID, "rule", rule.Name, "value", v, "threshold", rule.Threshold)
			events = append(events, ev)
		}
	}
	for _, ev := range events {
		e.deliver(ctx, ev)
	}
	return nil
}

// Step is a rule's state machine: the rule after a poll at at whose value
// v does (holds) or does not pass the threshold, and the event to notify
// when the state changed between ok and firing (nil otherwise).
func Step(r Rule, holds bool, v float64, at time.Time) (Rule, *Event) {
	event := func(state string, since time.Time) *Event {
		return &Event{PlatformID: r.PlatformID, RuleID: r.ID, Rule: r.Name, Kind: r.Kind, State: state,
			Value: v, Threshold: r.Threshold, Since: since, At: at}
	}
	switch r.State {
	case StateFiring:
		if holds {
			r.ClearSince = time.Time{}
			return r, nil
		}
		if r.ClearSince.IsZero() {
			r.ClearSince = at
		}
		if at.Sub(r.ClearSince) < r.ClearFor {
			return r, nil
		}
		ev := event(Resolved, r.ClearSince)
		r.State, r.Since, r.ClearSince, r.Value = StateOK, time.Time{}, time.Time{}, v
		return r, ev
	case StatePending:
		if !holds {
			r.State, r.Since = StateOK, time.Time{}
			return r, nil
		}
	default:
		if !holds {
			return r, nil
		}
		r.State, r.Since = StatePending, at
	}
	if at.Sub(r.Since) < r.For {
		return r, nil
	}
	r.State, r.Value = StateFiring, v
	return r, event(Fired, r.Since)
}

// value is the rule's value in a poll, with a detail for the
// notification; ok is false when the poll does not tell it (the broker
// did not answer, so no queue depth; no previous poll for a rate).
func value(r Rule, rd monitor.Reading, rate float64, rateOK bool) (v float64, detail string, ok bool) {
	switch r.Kind {
	case KindDown:
		var down []string
		for _, s := range rd.Samples {
			name, isUp := strings.CutPrefix(s.Metric, monitor.UpPrefix)
			if !isUp || (r.Component != "" && name != r.Component) {
				continue
			}
			ok = true
			if s.Value == 0 {
				d := name
				for _, c := range rd.Components {
					if c.Name == name && c.Reason != "" {
						d += ": " + c.Reason
					}
				}
				down = append(down, d)
			}
		}
		slices.Sort(down)
		return float64(len(down)), strings.Join(down, "; "), ok
	case KindQueueDepth:
		v, ok = sample(rd, monitor.MetricQueueDepth)
		return v, fmt.Sprintf("%.0f messages ready in the ingest queue", v), ok
	case KindDisk:
		v, ok = sample(rd, monitor.MetricDiskUsed)
		return v * 100, fmt.Sprintf("data directory %.1f %% full", v*100), ok
	case KindDeadLetters:
		return rate, fmt.Sprintf("%.1f messages dead-lettered per minute", rate), rateOK
	}
	return 0, "", false
}

func sample(rd monitor.Reading, metric string) (float64, bool) {
	for _, s := range rd.Samples {
		if s.Metric == metric {
			return s.Value, true
		}
	}
	return 0, false
}

// deadLetterRate is the platform's dead letters per minute between its
// previous poll and this one, summed over the workers' counters; a
// counter lower than before restarted from zero, so its value is the
// increase. ok is false on the first poll (or with no counter). Called
// with e.mu held.
func (e *Engine) deadLetterRate(platformID int64, at time.Time, samples []monitor.Sample) (float64, bool) {
	cur := counters{at: at, vals: map[string]float64{}}
	for _, s := range samples {
		if s.Metric == monitor.MetricDeadLettered || strings.HasPrefix(s.Metric, monitor.MetricDeadLettered+"@") {
			cur.vals[s.Metric] = s.Value
		}
	}
	if len(cur.vals) == 0 {
		return 0, false // the workers did not answer: keep the last counters
	}
	prev, had := e.counters[platformID]
	e.counters[platformID] = cur
	if !had || !at.After(prev.at) {
		return 0, false
	}
	var inc float64
	for m, v := range cur.vals {
		p, ok := prev.vals[m]
		switch {
		case !ok:
			// A new worker's counter: its increase since the last poll
			// is unknown, so it counts from the next poll on.
		case v >= p:
			inc += v - p
		default:
			inc += v
		}
	}
	return inc / at.Sub(prev.at).Minutes(), true
}
