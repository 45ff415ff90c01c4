package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/myt-iot/myt"
)

// DefaultInterval is how often a platform is polled when
// Poller.Interval is zero.
const DefaultInterval = 30 * time.Second

// Appender records the samples of a poll (Store's Append).
type Appender interface {
	Append(ctx context.Context, platformID int64, at time.Time, samples []Sample) error
}

// Status is what the Poller last learnt of a platform.
type Status struct {
	PlatformID int64 `json:"platformId"`
	// Monitored is false when the platform has no Target (Err says why).
	Monitored bool `json:"monitored"`
	// Err is why the platform is not monitored, or why its last poll
	// could not be recorded.
	Err string `json:"error,omitempty"`
	// Time is when the last poll ended (zero before the first).
	Time       time.Time        `json:"time"`
	Components []ComponentState `json:"components,omitempty"`
	// Polls counts finished polls; Skipped counts ticks dropped because
	// the poll before was still running.
	Polls   int64 `json:"polls"`
	Skipped int64 `json:"skipped"`
}

// Poller polls every running platform on its own loop: one goroutine per
// platform, polling at Interval with at most one poll in flight, each poll
// bounded by Timeout. Set the fields, then call Sync whenever the set of
// platforms may have changed, and Stop at shutdown.
type Poller struct {
	Store Appender
	// Targets returns a platform's Target; an error (ErrUnsupported)
	// leaves the platform unmonitored, with the error in its Status.
	Targets func(*myt.Platform) (Target, error)
	// Interval is the time between polls (DefaultInterval when zero).
	Interval time.Duration
	// Timeout bounds one poll, and must be shorter than Interval (2/3 of
	// Interval when zero).
	Timeout time.Duration
	Log     *slog.Logger
	Now     func() time.Time
	// OnPoll, when set, is called after each recorded poll of a platform
	// with the poll's time and reading (its Samples include the up_*
	// gauges). It runs on the platform's poll loop, so it must return
	// quickly (hand the work to another goroutine); it is never called
	// for a poll cut short by Stop or Sync.
	OnPoll func(platformID int64, at time.Time, r Reading)

	mu    sync.Mutex
	loops map[int64]*loop
	// lastDone holds the done channels of stopped loops until they end.
	lastDone map[int64]chan struct{}
	status   map[int64]*Status
	wg       sync.WaitGroup
	stopped  bool
}

type loop struct {
	key    string
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *Poller) interval() time.Duration {
	if p.Interval > 0 {
		return p.Interval
	}
	return DefaultInterval
}

func (p *Poller) timeout() time.Duration {
	if p.Timeout > 0 && p.Timeout < p.interval() {
		return p.Timeout
	}
	return p.interval() * 2 / 3
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Poller) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Validate checks the poller's settings.
func (p *Poller) Validate() error {
	if p.Interval < 0 || (p.Interval > 0 && p.Interval < 10*time.Millisecond) {
		return myt.Errorf(myt.EINVALID, "monitor interval: %s is too short (at least 10ms; the default is %s).", p.Interval, DefaultInterval)
	}
	if p.Timeout < 0 || (p.Timeout > 0 && p.Timeout >= p.interval()) {
		return myt.Errorf(myt.EINVALID, "monitor timeout: %s must be shorter than the interval %s.", p.Timeout, p.interval())
	}
	if p.Store == nil || p.Targets == nil {
		return myt.Errorf(myt.EINVALID, "monitor: a store and targets are required.")
	}
	return nil
}

// key says which deployment of a platform a loop polls: a new deployed
// revision or provider restarts the loop with a new Target.
func key(pl *myt.Platform) string {
	provider, workers := "", 0
	if pl.Design != nil {
		provider, workers = pl.Design.Spec.Target.Provider, pl.Design.Spec.Processing.Workers
	}
	return fmt.Sprintf("%d/%s/%d", pl.DeployedRevision, provider, workers)
}

// Sync polls the running platforms among platforms, and stops polling
// every other one (gone, destroyed, being deployed). It does not wait
// for stopped loops: a loop restarted for a new deployment waits for the
// old one's poll to end, so there is never more than one in flight.
func (p *Poller) Sync(platforms []*myt.Platform) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	if p.loops == nil {
		p.loops, p.status, p.lastDone = map[int64]*loop{}, map[int64]*Status{}, map[int64]chan struct{}{}
	}
	for id, done := range p.lastDone {
		select {
		case <-done:
			delete(p.lastDone, id)
		default:
		}
	}
	want := map[int64]*myt.Platform{}
	for _, pl := range platforms {
		if pl.Status == myt.StatusRunning {
			want[pl.ID] = pl
		}
	}
	for id, l := range p.loops {
		if pl, ok := want[id]; !ok || key(pl) != l.key {
			l.cancel()
			delete(p.loops, id)
			p.lastDone[id] = l.done
		}
	}
	for id := range p.status {
		if _, ok := want[id]; !ok {
			delete(p.status, id)
		}
	}
	for id, pl := range want {
		k := key(pl)
		if l, ok := p.loops[id]; ok && l.key == k {
			continue
		}
		prev := p.status[id]
		t, err := p.Targets(pl)
		if err != nil {
			if prev == nil || prev.Err != err.Error() {
				p.log().Warn("platform not monitored", "platform", id, "err", err)
			}
			p.status[id] = &Status{PlatformID: id, Err: err.Error()}
			continue
		}
		after := p.lastDone[id]
		ctx, cancel := context.WithCancel(context.Background())
		l := &loop{key: k, cancel: cancel, done: make(chan struct{})}
		p.loops[id] = l
		if prev == nil || !prev.Monitored {
			p.status[id] = &Status{PlatformID: id, Monitored: true}
		}
		p.wg.Add(1)
		go p.run(ctx, id, t, l, after)
	}
}

// Run syncs the poller with the platforms list returns, at once and then
// every Interval (a newly deployed platform is polled within one
// interval), until ctx ends; then it stops every loop and returns. A
// failing list is logged and the loops go on as they were.
func (p *Poller) Run(ctx context.Context, list func(context.Context) ([]*myt.Platform, error)) {
	defer p.Stop()
	t := time.NewTicker(p.interval())
	defer t.Stop()
	for {
		if ps, err := list(ctx); err != nil {
			if ctx.Err() == nil {
				p.log().Error("list the platforms to monitor", "err", err)
			}
		} else {
			p.Sync(ps)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Status returns what the poller last learnt of the platform; ok is false
// when the platform is not among the running ones Sync was given.
func (p *Poller) Status(platformID int64) (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.status[platformID]
	if !ok {
		return Status{}, false
	}
	c := *s
	c.Components = slices.Clone(s.Components)
	return c, true
}

// Stop ends every loop and waits for their polls to end (each within
// Timeout). Sync does nothing after Stop.
func (p *Poller) Stop() {
	p.mu.Lock()
	p.stopped = true
	for id, l := range p.loops {
		l.cancel()
		delete(p.loops, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Poller) run(ctx context.Context, id int64, t Target, l *loop, after chan struct{}) {
	defer p.wg.Done()
	defer close(l.done)
	defer l.cancel()
	if c, ok := t.(interface{ Close() }); ok {
		defer c.Close()
	}
	if after != nil {
		select {
		case <-after:
		case <-ctx.Done():
			return
		}
	}
	tick := time.NewTicker(p.interval())
	defer tick.Stop()
	for {
		p.poll(ctx, id, t)
		// A tick that came while polling is dropped, not queued: a slow
		// platform is polled less often, never concurrently.
		select {
		case <-tick.C:
			p.update(id, func(s *Status) { s.Skipped++ })
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Poller) poll(ctx context.Context, id int64, t Target) {
	pctx, cancel := context.WithTimeout(ctx, p.timeout())
	r := t.Poll(pctx)
	cancel()
	if ctx.Err() != nil {
		return // stopped mid-poll: the reading is incomplete
	}
	at := p.now()
	samples := r.Samples
	for _, c := range r.Components {
		v := 0.0
		if c.Up {
			v = 1
		}
		samples = append(samples, Sample{Metric: UpPrefix + c.Name, Kind: Gauge, Value: v})
	}
	wctx, cancel := context.WithTimeout(ctx, p.interval())
	err := p.Store.Append(wctx, id, at, samples)
	cancel()
	if err != nil && ctx.Err() == nil {
		p.log().Error("record monitoring samples", "platform", id, "err", err)
	}
	p.update(id, func(s *Status) {
		s.Time, s.Components, s.Err = at, r.Components, ""
		if err != nil {
			s.Err = "recording the poll failed: " + err.Error()
		}
		s.Polls++
	})
	if p.OnPoll != nil {
		p.OnPoll(id, at, Reading{Samples: samples, Components: r.Components})
	}
}

func (p *Poller) update(id int64, f func(*Status)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.status[id]; ok {
		f(s)
	}
}
