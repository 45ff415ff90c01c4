package monitor_test

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/worker"
)

// newWorkerServer serves a real worker's HTTP API (worker.HTTPHandler,
// with its /metrics registry from worker.NewMetrics). The worker is not
// running, so its own /readyz says "broker not connected"; when ready is
// set, /readyz answers 200 as a connected worker's does.
func newWorkerServer(t *testing.T, ready bool) (*worker.Worker, *httptest.Server) {
	t.Helper()
	w := worker.New(&worker.Config{}, nil, slog.New(slog.DiscardHandler))
	h := w.HTTPHandler("")
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if ready && r.URL.Path == "/readyz" {
			fmt.Fprintln(rw, "ready")
			return
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	return w, srv
}

// queueJSON is GET /api/queues/myt/myt.ingest as RabbitMQ 3.13.7 (the
// platform's image) answers it, trimmed of the fields not read; the
// message_stats shape is rabbit_mgmt_stats.erl's format_rate for
// queue_stats_deliver_stats and queue_exchange_stats_publish.
const queueJSON = `{"arguments":{"x-dead-letter-exchange":"","x-dead-letter-routing-key":"myt.dead","x-queue-type":"quorum"},
"auto_delete":false,"consumer_capacity":1,"consumer_utilisation":1,"consumers":1,"durable":true,"exclusive":false,
"leader":"rabbit@rabbitmq","members":["rabbit@rabbitmq"],
"message_bytes":%[1]d,"message_bytes_ready":%[1]d,"message_bytes_unacknowledged":0,
"message_stats":{"ack":%[3]d,"ack_details":{"rate":%[4]g},"deliver":%[3]d,"deliver_details":{"rate":%[4]g},
"deliver_get":%[3]d,"deliver_get_details":{"rate":%[4]g},"deliver_no_ack":0,"deliver_no_ack_details":{"rate":0.0},
"get":0,"get_details":{"rate":0.0},"get_empty":0,"get_empty_details":{"rate":0.0},"get_no_ack":0,"get_no_ack_details":{"rate":0.0},
"publish":%[2]d,"publish_details":{"rate":%[4]g},"redeliver":0,"redeliver_details":{"rate":0.0}},
"messages":%[1]d,"messages_details":{"rate":0.0},"messages_ready":%[1]d,"messages_ready_details":{"rate":0.0},
"messages_unacknowledged":0,"messages_unacknowledged_details":{"rate":0.0},
"name":"myt.ingest","node":"rabbit@rabbitmq","online":["rabbit@rabbitmq"],"state":"running","type":"quorum","vhost":"myt"}`

// broker is a fake RabbitMQ management API for the ingest queue.
type broker struct {
	password         string
	ready, published atomic.Int64
	acked            atomic.Int64
	ackRate          atomic.Value // float64
}

func newBroker(t *testing.T, password string) (*broker, *httptest.Server) {
	t.Helper()
	b := &broker{password: password}
	b.ackRate.Store(0.0)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if !ok || user != monitor.ManagementUser || subtle.ConstantTimeCompare([]byte(pw), []byte(b.password)) != 1 {
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(rw, `{"error":"not_authorized","reason":"Not_Authorized"}`)
			return
		}
		if r.URL.EscapedPath() != "/api/queues/myt/myt.ingest" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, queueJSON, b.ready.Load(), b.published.Load(), b.acked.Load(), b.ackRate.Load().(float64))
	}))
	t.Cleanup(srv.Close)
	return b, srv
}

// targets returns a Targets.For-like function whose local target reads
// the given servers, with the admin password from the platform's real
// sealed secrets.
func (f *fixture) targets(client *http.Client, workerURLs []string, mgmtURL string) func(*myt.Platform) (monitor.Target, error) {
	ts := &monitor.Targets{Client: client, Secrets: f.svc.Secrets}
	return func(p *myt.Platform) (monitor.Target, error) {
		t, err := ts.For(p)
		if err != nil {
			return nil, err
		}
		lt := t.(*monitor.LocalTarget)
		lt.WorkerURLs, lt.ManagementURL, lt.GrafanaURL = workerURLs, mgmtURL, ""
		return lt, nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func polls(p *monitor.Poller, id int64) int64 {
	s, _ := p.Status(id)
	return s.Polls
}

func lastRaw(t *testing.T, f *fixture, metric string) (float64, bool) {
	t.Helper()
	si, ok, err := f.store.Lookup(context.Background(), f.platform.ID, metric)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return 0, false
	}
	r, ok, err := f.store.Last(context.Background(), si.ID, monitor.TierRaw, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return r.Value, ok
}

// TestPollerRecordsALocalPlatform: a running local platform is polled on
// its loop; the worker's real /metrics and the management API's queue
// land in the history, summed over two workers, handler errors counted
// from the handler's dead-letter reasons only, components up.
func TestPollerRecordsALocalPlatform(t *testing.T) {
	f := newFixture(t)
	const password = "Adm1n-pw-for-test"
	if err := f.svc.Secrets.Put(context.Background(), f.platform.ID, render.SecretRabbitMQAdmin, []byte(password)); err != nil {
		t.Fatal(err)
	}
	w1, s1 := newWorkerServer(t, true)
	w2, s2 := newWorkerServer(t, true)
	b, mgmt := newBroker(t, password)
	w1.Metrics.Stored.Add(40)
	w2.Metrics.Stored.Add(2)
	w1.Metrics.Dead.WithLabelValues(worker.ReasonHandlerError).Add(3)
	w2.Metrics.Dead.WithLabelValues(worker.ReasonHandlerTimeout).Add(1)
	w2.Metrics.Dead.WithLabelValues(worker.ReasonInvalidJSON).Add(5)
	w1.Metrics.DBUp.Set(1)
	w2.Metrics.DBUp.Set(1)
	w1.Metrics.BrokerUp.Set(1)
	w2.Metrics.BrokerUp.Set(1)
	b.ready.Store(120)
	b.published.Store(1000)
	b.ackRate.Store(40.0)

	client := monitor.NewClient()
	began := time.Now()
	p := &monitor.Poller{Store: f.store, Targets: f.targets(client, []string{s1.URL, s2.URL}, mgmt.URL), Interval: 200 * time.Millisecond}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	p.Sync([]*myt.Platform{f.platform})
	waitFor(t, "two polls", func() bool { return polls(p, f.platform.ID) >= 2 })

	for metric, want := range map[string]float64{
		monitor.WorkerMetric(monitor.MetricStored, 1):        40, // two workers: a series each
		monitor.WorkerMetric(monitor.MetricStored, 2):        2,
		monitor.WorkerMetric(monitor.MetricDeadLettered, 2):  6,
		monitor.WorkerMetric(monitor.MetricHandlerErrors, 1): 3, // handler-error
		monitor.WorkerMetric(monitor.MetricHandlerErrors, 2): 1, // handler-timeout, not invalid-json
		monitor.MetricQueueDepth:                             120,
		monitor.MetricMessagesIn:                             1000,
		monitor.MetricWorkerLag:                              3, // 120 ready / 40 acks/s
		monitor.UpPrefix + monitor.ComponentWorker:           1,
		monitor.UpPrefix + monitor.ComponentBroker:           1,
		monitor.UpPrefix + monitor.ComponentDatabase:         1,
	} {
		if got, ok := lastRaw(t, f, metric); !ok || got != want {
			t.Errorf("%s = %v (recorded: %v), want %v", metric, got, ok, want)
		}
	}
	st, _ := p.Status(f.platform.ID)
	if !st.Monitored || st.Err != "" || len(st.Components) < 4 {
		t.Errorf("status %+v", st)
	}

	// The counters move on; the rate over the polls is read back.
	w1.Metrics.Stored.Add(100)
	n := polls(p, f.platform.ID)
	waitFor(t, "a poll after the increment", func() bool { return polls(p, f.platform.ID) >= n+2 })
	if got, _ := lastRaw(t, f, monitor.WorkerMetric(monitor.MetricStored, 1)); got != 140 {
		t.Errorf("worker 1's stored_total %v after the increment, want 140", got)
	}
	// Range sums the workers' rates: 100 records stored over the polls.
	h := &monitor.History{Store: f.store, RawStep: p.Interval}
	s, err := h.Range(context.Background(), f.platform.ID, monitor.MetricStored, began, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var stored float64
	for i, pt := range s.Points {
		if i > 0 {
			stored += pt.Value * pt.Time.Sub(s.Points[i-1].Time).Seconds()
		} else if pt.Value != 0 {
			t.Errorf("first rate %v, want 0 (nothing stored between the first polls)", pt.Value)
		}
	}
	if math.Abs(stored-100) > 0.5 {
		t.Errorf("rates over the polls integrate to %v records, want 100: %+v", stored, s.Points)
	}
	// A worker whose database write failed is reported.
	w2.Metrics.DBUp.Set(0)
	n = polls(p, f.platform.ID)
	waitFor(t, "a poll after the database went down", func() bool { return polls(p, f.platform.ID) >= n+2 })
	if got, _ := lastRaw(t, f, monitor.UpPrefix+monitor.ComponentDatabase); got != 0 {
		t.Errorf("up_database %v with a worker's database down, want 0", got)
	}
}

// TestPollerRecordsDownComponents: a worker that is not ready, an
// unreachable management API and refused credentials are components
// down, with the reason, and polling goes on.
func TestPollerRecordsDownComponents(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.Secrets.Put(context.Background(), f.platform.ID, render.SecretRabbitMQAdmin, []byte("the-right-one")); err != nil {
		t.Fatal(err)
	}
	_, notReady := newWorkerServer(t, false) // the real /readyz: broker not connected
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + l.Addr().String()
	l.Close()

	p := &monitor.Poller{Store: f.store, Targets: f.targets(monitor.NewClient(), []string{notReady.URL}, gone), Interval: 200 * time.Millisecond}
	defer p.Stop()
	p.Sync([]*myt.Platform{f.platform})
	waitFor(t, "three polls", func() bool { return polls(p, f.platform.ID) >= 3 })
	st, _ := p.Status(f.platform.ID)
	reasons := map[string]string{}
	for _, c := range st.Components {
		if !c.Up {
			reasons[c.Name] = c.Reason
		}
	}
	if r := reasons[monitor.ComponentWorker]; !strings.Contains(r, "/readyz: HTTP 503") {
		t.Errorf("worker down reason %q", r)
	}
	if r := reasons[monitor.ComponentBroker]; !strings.Contains(r, "connection refused") {
		t.Errorf("broker down reason %q", r)
	}
	for _, c := range []string{monitor.ComponentWorker, monitor.ComponentBroker} {
		if got, ok := lastRaw(t, f, monitor.UpPrefix+c); !ok || got != 0 {
			t.Errorf("up_%s = %v (recorded %v), want 0", c, got, ok)
		}
	}
	if _, ok := lastRaw(t, f, monitor.MetricQueueDepth); ok {
		t.Error("a queue depth was recorded for an unreachable broker")
	}

	// Refused credentials: the reason says so and does not carry them.
	_, mgmt := newBroker(t, "another-password")
	p.Stop()
	p2 := &monitor.Poller{Store: f.store, Targets: f.targets(monitor.NewClient(), []string{notReady.URL}, mgmt.URL), Interval: 200 * time.Millisecond}
	defer p2.Stop()
	p2.Sync([]*myt.Platform{f.platform})
	waitFor(t, "a poll", func() bool { return polls(p2, f.platform.ID) >= 1 })
	st, _ = p2.Status(f.platform.ID)
	for _, c := range st.Components {
		if c.Name == monitor.ComponentBroker && (c.Up || !strings.Contains(c.Reason, "credentials were refused") || strings.Contains(c.Reason, "the-right-one")) {
			t.Errorf("broker with a wrong password: %+v", c)
		}
	}
}

// TestSlowPlatformDoesNotPileUp: a platform whose endpoints answer only
// after the poll timeout (or never) is polled tick after tick without
// more goroutines or open connections than one poll needs, is reported
// down with "no answer within the poll timeout", and Stop ends
// everything.
func TestSlowPlatformDoesNotPileUp(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.Secrets.Put(context.Background(), f.platform.ID, render.SecretRabbitMQAdmin, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	var open, maxOpen, requests atomic.Int64
	var mu sync.Mutex
	slow := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select { // a hung platform: answers after 2 s, unless the client gives up
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	slow.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			if n := open.Add(1); n > maxOpen.Load() {
				maxOpen.Store(n)
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	slow.Start()
	defer slow.Close()

	client := monitor.NewClient()
	targets := f.targets(client, []string{slow.URL, slow.URL}, slow.URL)
	var inFlight, maxInFlight atomic.Int64
	p := &monitor.Poller{Store: f.store, Interval: 30 * time.Millisecond, Timeout: 20 * time.Millisecond,
		Targets: func(pl *myt.Platform) (monitor.Target, error) {
			tg, err := targets(pl)
			return overlapCounter{tg, &inFlight, &maxInFlight}, err
		}}
	runtime.GC()
	before := runtime.NumGoroutine()
	p.Sync([]*myt.Platform{f.platform})
	waitFor(t, "a first poll", func() bool { return polls(p, f.platform.ID) >= 1 })
	// A poll makes three requests at once (two workers, the management
	// API): the goroutines of their connections, client and server side,
	// come and go with each poll. A pile-up would grow with the polls, so
	// the peak over polls 15 to 35 must be no higher than over the first
	// five.
	early, late := 0, 0
	for n := polls(p, f.platform.ID); n < 35; n = polls(p, f.platform.ID) {
		g := runtime.NumGoroutine()
		if n < 5 {
			early = max(early, g)
		} else if n >= 15 {
			late = max(late, g)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, peak %d early, %d late; %d connections at most", before, early, late, maxOpen.Load())
	if m := maxInFlight.Load(); m != 1 {
		t.Errorf("%d polls of one platform in flight at once, want 1", m)
	}
	if late > early+6 || late-before > 40 {
		t.Errorf("goroutines: %d before polling, peak %d over the first polls, %d over polls 15 to 35", before, early, late)
	}
	if m := maxOpen.Load(); m > 9 {
		t.Errorf("%d connections open at once to the slow platform, want at most three polls' worth (9)", m)
	}
	if requests.Load() < 30 {
		t.Errorf("%d requests in 30 polls", requests.Load())
	}
	st, _ := p.Status(f.platform.ID)
	for _, c := range st.Components {
		if c.Up || !strings.Contains(c.Reason, "no answer within the poll timeout") {
			t.Errorf("component of a hung platform: %+v", c)
		}
	}
	p.Stop()
	client.CloseIdleConnections()
	waitFor(t, "goroutines to end after Stop", func() bool { return runtime.NumGoroutine() <= before+2 })
	n := requests.Load()
	time.Sleep(100 * time.Millisecond)
	if requests.Load() != n {
		t.Error("requests went on after Stop")
	}
}

// TestSyncFollowsPlatforms: Sync starts a loop for a running platform,
// leaves a platform being deployed alone, restarts the loop on a new
// deployed revision and stops it when the platform is gone; an ssh
// platform without a monitor key (deployed by an older MyT) is reported
// unmonitored, with ErrUnsupported's message.
func TestSyncFollowsPlatforms(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.Secrets.Put(context.Background(), f.platform.ID, render.SecretRabbitMQAdmin, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	_, w := newWorkerServer(t, true)
	var made atomic.Int64
	targets := f.targets(monitor.NewClient(), []string{w.URL}, "")
	p := &monitor.Poller{Store: f.store, Interval: 100 * time.Millisecond, Targets: func(pl *myt.Platform) (monitor.Target, error) {
		if pl.Design.Spec.Target.Provider == myt.ProviderLocal {
			made.Add(1)
			return targets(pl)
		}
		return (&monitor.Targets{Secrets: f.svc.Secrets}).For(pl)
	}}
	defer p.Stop()
	ssh := f.addPlatform(t, "remote")
	ssh.Design.Spec.Target.Provider = myt.ProviderSSH
	deploying := f.addPlatform(t, "next")
	deploying.Status = myt.StatusDeploying

	p.Sync([]*myt.Platform{f.platform, ssh, deploying})
	waitFor(t, "a poll", func() bool { return polls(p, f.platform.ID) >= 1 })
	if st, ok := p.Status(ssh.ID); !ok || st.Monitored || !strings.Contains(st.Err, "it has no monitor key") {
		t.Errorf("ssh platform status %+v, %v", st, ok)
	}
	if _, err := (&monitor.Targets{Secrets: f.svc.Secrets}).For(ssh); !errors.Is(err, monitor.ErrUnsupported) {
		t.Errorf("ssh target: %v, want ErrUnsupported", err)
	}
	if _, ok := p.Status(deploying.ID); ok {
		t.Error("a platform being deployed is polled")
	}
	p.Sync([]*myt.Platform{f.platform, ssh}) // the same deployment: the loop goes on
	if made.Load() != 1 {
		t.Errorf("%d targets made for one deployment", made.Load())
	}
	redeployed := *f.platform
	redeployed.DeployedRevision++
	p.Sync([]*myt.Platform{&redeployed})
	waitFor(t, "the loop of the new revision", func() bool { return made.Load() == 2 })
	p.Sync(nil)
	if _, ok := p.Status(f.platform.ID); ok {
		t.Error("a platform no longer running still has a status")
	}
	si, _, _ := f.store.Lookup(context.Background(), f.platform.ID, monitor.UpPrefix+monitor.ComponentWorker)
	count := func() int {
		rows, err := f.store.Rows(context.Background(), si.ID, monitor.TierRaw, time.Time{}, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	time.Sleep(100 * time.Millisecond) // a poll in flight at Sync may still land
	n := count()
	time.Sleep(250 * time.Millisecond)
	if count() != n {
		t.Error("polls went on after the platform left Sync")
	}
}

// overlapCounter counts the polls of a Target in flight at once.
type overlapCounter struct {
	monitor.Target
	n, max *atomic.Int64
}

func (o overlapCounter) Poll(ctx context.Context) monitor.Reading {
	n := o.n.Add(1)
	defer o.n.Add(-1)
	for m := o.max.Load(); n > m && !o.max.CompareAndSwap(m, n); m = o.max.Load() {
	}
	return o.Target.Poll(ctx)
}

// countingTarget reports the worker up and counts its polls and closes.
type countingTarget struct{ n, closed *atomic.Int64 }

func (c countingTarget) Close() { c.closed.Add(1) }

func (c countingTarget) Poll(context.Context) monitor.Reading {
	c.n.Add(1)
	return monitor.Reading{Components: []monitor.ComponentState{{Name: monitor.ComponentWorker, Up: true}}}
}

// TestRunFollowsTheDatabase: Run polls the platforms the database says
// are running (any user's), picks up one that starts running, and ends
// every loop when its context ends, closing their targets; deleting a
// platform deletes its history.
func TestRunFollowsTheDatabase(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	jobs := sqlite.NewJobStore(f.db)
	rev := 1
	if err := jobs.SetPlatformDeployment(ctx, f.platform.ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &rev}); err != nil {
		t.Fatal(err)
	}
	later := f.addPlatform(t, "later") // designed, not running yet
	counts := map[int64]*atomic.Int64{f.platform.ID: {}, later.ID: {}}
	var closed atomic.Int64
	p := &monitor.Poller{Store: f.store, Interval: 20 * time.Millisecond, Targets: func(pl *myt.Platform) (monitor.Target, error) {
		if pl.DeployedRevision != 1 || pl.Design.Spec.Target.Provider != myt.ProviderLocal {
			t.Errorf("platform %d listed with revision %d, design %+v", pl.ID, pl.DeployedRevision, pl.Design.Spec.Target)
		}
		return countingTarget{counts[pl.ID], &closed}, nil
	}}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(rctx, f.store.RunningPlatforms); close(done) }()
	waitFor(t, "the running platform's polls", func() bool { return counts[f.platform.ID].Load() >= 2 })
	if counts[later.ID].Load() != 0 {
		t.Error("a designed platform was polled")
	}
	if err := jobs.SetPlatformDeployment(ctx, later.ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &rev}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the newly running platform's polls", func() bool { return counts[later.ID].Load() >= 2 })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	n := counts[later.ID].Load()
	time.Sleep(60 * time.Millisecond)
	if counts[later.ID].Load() != n {
		t.Error("polls went on after Run returned")
	}
	if c := closed.Load(); c != 2 {
		t.Errorf("%d targets closed after Run returned, want both", c)
	}

	if s, err := f.store.Series(ctx, later.ID); err != nil || len(s) == 0 {
		t.Fatalf("the polled platform has no series: %v, %v", s, err)
	}
	if err := jobs.SetPlatformDeployment(ctx, later.ID, myt.PlatformDeployment{Status: myt.StatusDestroyed}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Platforms.DeletePlatform(f.ctx, later.ID); err != nil {
		t.Fatal(err)
	}
	if s, err := f.store.Series(ctx, later.ID); err != nil || len(s) != 0 {
		t.Errorf("a deleted platform's series remain: %v, %v", s, err)
	}
	if s, err := f.store.Series(ctx, f.platform.ID); err != nil || len(s) == 0 {
		t.Errorf("the other platform's series: %v, %v", s, err)
	}
}

// TestGrafanaHealth: Grafana is up when /api/health over HTTPS, checked
// against the platform's own CA from its secrets, says its database is
// ok; a failing database or a certificate from another CA is down.
func TestGrafanaHealth(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ca, err := pki.NewCA("shed", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Secrets.Put(ctx, f.platform.ID, monitor.SecretCACert, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	var db atomic.Value
	db.Store("ok")
	grafana := func(ca *pki.CA) *httptest.Server {
		cert, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, pki.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/health" {
				http.NotFound(rw, r)
				return
			}
			rw.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(rw, `{"commit":"abc","database":%q,"version":"11.3.0"}`, db.Load().(string))
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	good := grafana(ca)
	other, err := pki.NewCA("impostor", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	impostor := grafana(other)

	poll := func(url string) monitor.ComponentState {
		t.Helper()
		tg, err := (&monitor.Targets{Client: monitor.NewClient(), Secrets: f.svc.Secrets}).For(f.platform)
		if err != nil {
			t.Fatal(err)
		}
		lt := tg.(*monitor.LocalTarget)
		lt.WorkerURLs, lt.ManagementURL, lt.GrafanaURL = nil, "", url
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, c := range lt.Poll(pctx).Components {
			if c.Name == monitor.ComponentGrafana {
				return c
			}
		}
		t.Fatal("no grafana component in the reading")
		return monitor.ComponentState{}
	}
	if c := poll(good.URL); !c.Up {
		t.Errorf("healthy Grafana: %+v", c)
	}
	db.Store("failing")
	if c := poll(good.URL); c.Up || !strings.Contains(c.Reason, `database "failing"`) {
		t.Errorf("Grafana with a failing database: %+v", c)
	}
	db.Store("ok")
	if c := poll(impostor.URL); c.Up || !strings.Contains(c.Reason, "certificate") {
		t.Errorf("Grafana with another CA's certificate: %+v", c)
	}
}
