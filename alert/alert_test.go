package alert_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

const secret = "whsec-test-0123456789"

// fixture is a real SQLite database with one platform, an alert store
// over it and a webhook receiver.
type fixture struct {
	db       *sqlite.DB
	store    *sqlite.AlertStore
	platform *myt.Platform
	recv     *receiver
	clock    time.Time
}

// receiver is a webhook endpoint that verifies the signature and keeps
// every notification; while failing it answers 503.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	got      []alert.Payload
	requests int
	failing  bool
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		if !hmac.Equal([]byte(req.Header.Get("X-MyT-Signature")), []byte(want)) {
			t.Errorf("signature %q, want %q", req.Header.Get("X-MyT-Signature"), want)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.failing {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var p alert.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("payload %s: %v", body, err)
		}
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setFailing(v bool) {
	r.mu.Lock()
	r.failing = v
	r.mu.Unlock()
}

func (r *receiver) payloads() []alert.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Payload(nil), r.got...)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	if _, err := svc.Users.CreateUser(context.Background(), myt.UserCreate{Username: "ada", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Users.Authenticate(context.Background(), "ada", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: shed}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Platforms.CreatePlatform(myt.NewContextWithAuth(context.Background(), a), d)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, store: sqlite.NewAlertStore(db), platform: p, recv: newReceiver(t),
		clock: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	if _, err := f.store.AddChannel(context.Background(), p.ID, "ops", alert.Webhook{URL: f.recv.srv.URL + "/hook?token=t0ps3cret", Secret: secret}); err != nil {
		t.Fatal(err)
	}
	return f
}

// engine is a new engine over the fixture's database, as after a
// restart; its waits between tries are recorded, not slept.
func (f *fixture) engine(t *testing.T, waits *[]time.Duration) *alert.Engine {
	return &alert.Engine{Store: f.store, Backoff: 100 * time.Millisecond, Timeout: 2 * time.Second,
		Now: func() time.Time { return f.clock },
		Sleep: func(_ context.Context, d time.Duration) error {
			if waits != nil {
				*waits = append(*waits, d)
			}
			return nil
		}}
}

// poll feeds one poll of the database's up state and advances the clock
// by 30 s, as the monitor would.
func (f *fixture) poll(t *testing.T, e *alert.Engine, dbUp bool, extra ...monitor.Sample) {
	t.Helper()
	up := 1.0
	var comps []monitor.ComponentState
	if !dbUp {
		up = 0
		comps = []monitor.ComponentState{{Name: monitor.ComponentDatabase, Reason: "worker 1: database not reachable"}}
	}
	r := monitor.Reading{Samples: append([]monitor.Sample{
		{Metric: monitor.UpPrefix + monitor.ComponentWorker, Value: 1},
		{Metric: monitor.UpPrefix + monitor.ComponentDatabase, Value: up},
	}, extra...), Components: comps}
	if err := e.Observe(context.Background(), f.platform.ID, f.clock, r); err != nil {
		t.Fatal(err)
	}
	f.clock = f.clock.Add(30 * time.Second)
}

func (f *fixture) polls(t *testing.T, e *alert.Engine, n int, dbUp bool) {
	t.Helper()
	for range n {
		f.poll(t, e, dbUp)
	}
}

func (f *fixture) events(t *testing.T) []alert.Event {
	t.Helper()
	evs, err := f.store.Events(context.Background(), f.platform.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func states(ps []alert.Payload) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Rule+":"+p.State)
	}
	return strings.Join(s, ",")
}

// TestDownFiresOnceAndResolvesOnce: the default component-down rule
// (2 minutes down to fire, 1 minute up to resolve). Down for 90 s sends
// nothing; down for 2 minutes sends exactly one "firing", however long
// it stays down; back up for a minute sends exactly one "resolved". Both
// are signed, carry the payload's fields, and are in the history with
// their delivery.
func TestDownFiresOnceAndResolvesOnce(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, nil)
	f.polls(t, e, 2, true)
	f.polls(t, e, 4, false) // 0, 30, 60, 90 s down
	f.polls(t, e, 1, true)
	if got := f.recv.payloads(); len(got) != 0 {
		t.Fatalf("down for 90 s sent %s, want nothing", states(got))
	}
	downAt := f.clock
	f.polls(t, e, 4, false) // 0..90 s
	if got := f.recv.payloads(); len(got) != 0 {
		t.Fatalf("sent %s before 2 minutes down", states(got))
	}
	firedAt := f.clock
	f.polls(t, e, 10, false) // 120 s down: fires, then stays down 4.5 more minutes
	got := f.recv.payloads()
	if states(got) != "component-down:firing" {
		t.Fatalf("sent %s, want one component-down:firing", states(got))
	}
	p := got[0]
	if p.Platform != "shed" || p.PlatformID != f.platform.ID || p.Value != 1 || p.Threshold != 0 ||
		!p.Since.Equal(downAt) || !p.At.Equal(firedAt) || !strings.Contains(p.Detail, "database: worker 1: database not reachable") {
		t.Errorf("firing payload %+v (down since %v, fired at %v)", p, downAt, firedAt)
	}
	upAt := f.clock
	f.polls(t, e, 2, true) // up 0, 30 s: not yet a minute
	if got := f.recv.payloads(); len(got) != 1 {
		t.Fatalf("sent %s before a minute up", states(got))
	}
	f.polls(t, e, 5, true)
	got = f.recv.payloads()
	if states(got) != "component-down:firing,component-down:resolved" {
		t.Fatalf("sent %s, want one firing then one resolved", states(got))
	}
	if r := got[1]; r.Value != 0 || !r.Since.Equal(upAt) || !r.At.Equal(upAt.Add(time.Minute)) {
		t.Errorf("resolved payload %+v, want since %v at %v", r, upAt, upAt.Add(time.Minute))
	}
	evs := f.events(t)
	if len(evs) != 2 || evs[0].State != alert.Resolved || evs[1].State != alert.Fired {
		t.Fatalf("history %+v, want resolved then fired (newest first)", evs)
	}
	for _, ev := range evs {
		if len(ev.Deliveries) != 1 || ev.Deliveries[0].Status != alert.Delivered || ev.Deliveries[0].Attempts != 1 {
			t.Errorf("event %s deliveries %+v, want one delivered at the first try", ev.State, ev.Deliveries)
		}
	}
}

// TestFlappingDoesNotStorm: a database that goes down and up at every
// poll never holds down for 2 minutes: nothing is sent. Once firing, up
// for 30 s between downs is shorter than the minute a resolve needs: it
// stays one "firing", no resolve/fire pairs.
func TestFlappingDoesNotStorm(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, nil)
	for range 20 {
		f.poll(t, e, false)
		f.poll(t, e, true)
	}
	if got := f.recv.payloads(); len(got) != 0 {
		t.Fatalf("flapping sent %s, want nothing", states(got))
	}
	f.polls(t, e, 5, false)
	for range 20 {
		f.poll(t, e, true)
		f.poll(t, e, false)
	}
	if got := states(f.recv.payloads()); got != "component-down:firing" {
		t.Fatalf("flapping while firing sent %s, want the one firing", got)
	}
	if n := len(f.events(t)); n != 1 {
		t.Errorf("%d events in the history, want 1", n)
	}
}

// TestRestartDoesNotRefire: the rule's state is in the database. A new
// engine over it (a restarted server) sends nothing while the database
// stays down, resolves once when it is back, and a pending condition
// keeps counting from when it began.
func TestRestartDoesNotRefire(t *testing.T) {
	f := newFixture(t)
	f.polls(t, f.engine(t, nil), 6, false)
	if got := states(f.recv.payloads()); got != "component-down:firing" {
		t.Fatalf("sent %s", got)
	}
	e2 := f.engine(t, nil)
	f.polls(t, e2, 6, false)
	if got := states(f.recv.payloads()); got != "component-down:firing" {
		t.Fatalf("after a restart sent %s, want no second firing", got)
	}
	f.polls(t, e2, 3, true)
	if got := states(f.recv.payloads()); got != "component-down:firing,component-down:resolved" {
		t.Fatalf("sent %s, want one resolved", got)
	}
	// Down for 90 s, restart, down 30 s more: 2 minutes in all.
	f.polls(t, e2, 4, false)
	if got := len(f.recv.payloads()); got != 2 {
		t.Fatalf("%d notifications after 90 s of the second outage, want still 2", got)
	}
	f.polls(t, f.engine(t, nil), 1, false)
	if got := states(f.recv.payloads()); got != "component-down:firing,component-down:resolved,component-down:firing" {
		t.Fatalf("sent %s, want a second firing 2 minutes after the second outage began", got)
	}
	rules, err := f.store.Rules(context.Background(), f.platform.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(alert.Defaults()) {
		t.Errorf("%d rules after three engines, want the %d defaults once", len(rules), len(alert.Defaults()))
	}
}

// TestReceiverDownRetriesThenFails: a receiver answering 503 gets the
// configured 3 tries, with a doubling wait between them, and the
// delivery is recorded failed with the reason; a receiver that is gone
// likewise. Neither leaks the URL's token into the record.
func TestReceiverDownRetriesThenFails(t *testing.T) {
	f := newFixture(t)
	var waits []time.Duration
	e := f.engine(t, &waits)
	f.recv.setFailing(true)
	f.polls(t, e, 5, false)
	f.recv.mu.Lock()
	n := f.recv.requests
	f.recv.mu.Unlock()
	if n != 3 {
		t.Errorf("receiver got %d tries, want 3", n)
	}
	if len(waits) != 2 || waits[0] != 100*time.Millisecond || waits[1] != 200*time.Millisecond {
		t.Errorf("waited %v between tries, want [100ms 200ms]", waits)
	}
	evs := f.events(t)
	if len(evs) != 1 || len(evs[0].Deliveries) != 1 {
		t.Fatalf("history %+v", evs)
	}
	d := evs[0].Deliveries[0]
	if d.Status != alert.Failed || d.Attempts != 3 || !strings.Contains(d.Error, "HTTP 503") {
		t.Errorf("delivery %+v, want failed after 3 tries with HTTP 503", d)
	}
	f.recv.srv.Close()
	f.polls(t, e, 3, true)
	evs = f.events(t)
	if len(evs) != 2 || evs[0].State != alert.Resolved || len(evs[0].Deliveries) != 1 {
		t.Fatalf("history %+v", evs)
	}
	if d := evs[0].Deliveries[0]; d.Status != alert.Failed || d.Attempts != 3 || strings.Contains(d.Error, "t0ps3cret") || d.Error == "" {
		t.Errorf("delivery to a closed receiver %+v, want failed after 3 tries, without the URL's token", d)
	}
}

// TestThresholdRules: queue depth above 10000, dead letters above 10 per
// minute (from two workers' counters, one of them restarted) and disk
// above 90 % fire after 5 minutes; a broker that did not answer (no
// queue depth) leaves the queue rule as it was.
func TestThresholdRules(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, nil)
	var dl1, dl2 float64
	for i := range 12 {
		dl1 += 4 // 8 + 4 = 12 per minute at 30 s polls
		dl2 += 2
		if i == 6 {
			dl2 = 2 // worker 2 restarted: its counter starts again, +2
		}
		extra := []monitor.Sample{
			{Metric: monitor.WorkerMetric(monitor.MetricDeadLettered, 1), Kind: monitor.Counter, Value: dl1},
			{Metric: monitor.WorkerMetric(monitor.MetricDeadLettered, 2), Kind: monitor.Counter, Value: dl2},
			{Metric: monitor.MetricDiskUsed, Value: 0.93},
		}
		if i != 5 { // the broker did not answer one poll
			extra = append(extra, monitor.Sample{Metric: monitor.MetricQueueDepth, Value: 25000})
		}
		f.poll(t, e, true, extra...)
	}
	got := map[string]alert.Payload{}
	for _, p := range f.recv.payloads() {
		if _, dup := got[p.Rule]; dup {
			t.Errorf("%s sent twice", p.Rule)
		}
		got[p.Rule] = p
	}
	if p := got["queue-depth"]; p.State != alert.Fired || p.Value != 25000 || p.Threshold != 10000 {
		t.Errorf("queue-depth %+v", p)
	}
	if p := got["disk"]; p.State != alert.Fired || p.Value < 92.9 || p.Value > 93.1 || p.Threshold != 90 {
		t.Errorf("disk %+v", p)
	}
	if p := got["dead-letters"]; p.State != alert.Fired || p.Value != 12 || p.Threshold != 10 {
		t.Errorf("dead-letters %+v, want 12 per minute", p)
	}
	if _, ok := got["component-down"]; ok || len(got) != 3 {
		t.Errorf("sent %s, want queue-depth, disk and dead-letters", states(f.recv.payloads()))
	}
	// 8 per minute: under 10, resolves after 5 minutes.
	for range 12 {
		dl1 += 2
		dl2 += 2
		f.poll(t, e, true,
			monitor.Sample{Metric: monitor.WorkerMetric(monitor.MetricDeadLettered, 1), Kind: monitor.Counter, Value: dl1},
			monitor.Sample{Metric: monitor.WorkerMetric(monitor.MetricDeadLettered, 2), Kind: monitor.Counter, Value: dl2})
	}
	var resolved []string
	for _, p := range f.recv.payloads() {
		if p.State == alert.Resolved {
			resolved = append(resolved, p.Rule)
		}
	}
	if strings.Join(resolved, ",") != "dead-letters" {
		t.Errorf("resolved %v, want dead-letters only (no queue depth or disk read: they stand)", resolved)
	}
}

// TestSendTest: the "send test" of a channel posts one signed test
// notification and reports a receiver that refuses it.
func TestSendTest(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, nil)
	chans, err := f.store.Channels(context.Background(), f.platform.ID)
	if err != nil || len(chans) != 1 || !chans[0].Signed {
		t.Fatalf("channels %+v %v", chans, err)
	}
	if err := e.SendTest(context.Background(), chans[0]); err != nil {
		t.Fatal(err)
	}
	if got := f.recv.payloads(); len(got) != 1 || got[0].State != "test" || got[0].Platform != "shed" {
		t.Errorf("received %+v, want one test notification", got)
	}
	f.recv.setFailing(true)
	if err := e.SendTest(context.Background(), chans[0]); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("SendTest to a failing receiver: %v, want HTTP 503", err)
	}
	if _, err := f.store.AddChannel(context.Background(), f.platform.ID, "bad", alert.Webhook{URL: "ftp://example.invalid/x"}); myt.ErrorCode(err) != myt.EINVALID || !strings.Contains(err.Error(), "url") {
		t.Errorf("a non-http URL: %v, want EINVALID naming url", err)
	}
}

// setCertificate records the platform's server certificate end, as a
// deployment does.
func (f *fixture) setCertificate(t *testing.T, end time.Time) {
	t.Helper()
	err := sqlite.NewJobStore(f.db).SetPlatformDeployment(context.Background(), f.platform.ID, myt.PlatformDeployment{
		Status: myt.StatusRunning, SetEndpoints: true, Endpoints: &myt.Endpoints{Address: "127.0.0.1", CertificateExpires: end}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCertificateExpiry: the default certificate rule fires once when
// fewer than 30 days are left, and resolves once a deployment renewed
// the certificate.
func TestCertificateExpiry(t *testing.T) {
	f := newFixture(t)
	e := f.engine(t, nil)
	f.setCertificate(t, f.clock.Add(30*24*time.Hour+time.Minute))
	f.polls(t, e, 2, true) // 30 days and 1 minute, then 30 s left
	if got := f.recv.payloads(); len(got) != 0 {
		t.Fatalf("sent %s with 30 days left", states(got))
	}
	f.polls(t, e, 6, true)
	got := f.recv.payloads()
	if states(got) != "certificate:firing" {
		t.Fatalf("sent %s, want one certificate:firing", states(got))
	}
	if p := got[0]; p.Value >= 30 || p.Value < 29.99 || p.Threshold != 30 || !strings.Contains(p.Detail, "expires on") {
		t.Errorf("payload %+v", p)
	}
	f.setCertificate(t, f.clock.Add(365*24*time.Hour))
	f.polls(t, e, 3, true)
	if got := states(f.recv.payloads()); got != "certificate:firing,certificate:resolved" {
		t.Fatalf("sent %s after renewal, want one resolved", got)
	}
}
