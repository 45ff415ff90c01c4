package monitor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/worker"
)

// Target is what the Poller reads of one platform. A Target that holds
// resources of its own also has a Close() method, which the Poller calls
// when the platform's loop ends.
//
// Poll reads the platform once and returns by ctx's deadline. A part that
// cannot be read (down, slow, unreachable, refusing credentials) is a
// component reported down with its reason, and its samples are left out:
// a Target never invents values. Poll is called by one goroutine at a
// time per Target.
type Target interface {
	Poll(ctx context.Context) Reading
}

// Reading is the result of one poll.
type Reading struct {
	Samples    []Sample
	Components []ComponentState
}

// ComponentState is whether a component answered, and why not.
type ComponentState struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
	// Reason says why the component is down (empty when up). It names
	// what was asked and what failed, never a secret.
	Reason string `json:"reason,omitempty"`
}

func (r *Reading) up(name string) {
	r.Components = append(r.Components, ComponentState{Name: name, Up: true})
}

func (r *Reading) down(name, format string, args ...any) {
	r.Components = append(r.Components, ComponentState{Name: name, Reason: fmt.Sprintf(format, args...)})
}

func (r *Reading) add(metric string, kind Kind, v float64) {
	r.Samples = append(r.Samples, Sample{Metric: metric, Kind: kind, Value: v})
}

// ErrUnsupported is returned (wrapped) by Targets.For for a platform MyT
// cannot monitor yet.
var ErrUnsupported = errors.New("monitoring is not supported")

// SecretStore reads a platform's sealed operational secrets
// (sqlite.PlatformSecrets). Get returns ENOTFOUND when absent.
type SecretStore interface {
	Get(ctx context.Context, platformID int64, name string) ([]byte, error)
}

// SecretCACert is the platform secret holding its CA certificate (PEM),
// as deploy keeps it (deploy/bundle.go): Grafana's certificate is checked
// against it.
const SecretCACert = "tls/ca.crt"

// ManagementUser is the RabbitMQ administrator the platform's definitions
// create (render/platform.go), with the password render.SecretRabbitMQAdmin.
const ManagementUser = "myt-admin"

// Targets makes each platform's Target from how it was deployed.
type Targets struct {
	// Client is shared by every local target (NewClient); a target over
	// SSH has its own, which dials through its tunnel.
	Client  *http.Client
	Secrets SecretStore
	// DataDir is MyT's data directory: a local platform's data is under
	// DataDir/platforms/<id>/data (deploy/local.go).
	DataDir string
}

// For returns the platform's Target: a LocalTarget for a local
// platform; for a platform on an SSH host (the ssh provider, every cloud)
// an SSHTarget reaching the same loopback ports through a tunnel, logged
// in with the monitor key its deploy installed. A platform on an SSH host
// that has no monitor key yet (deployed by an older MyT) is an error
// wrapping ErrUnsupported that says how to get one.
func (ts *Targets) For(p *myt.Platform) (Target, error) {
	if p.Design == nil {
		return nil, fmt.Errorf("platform %d has no design", p.ID)
	}
	workers := max(p.Design.Spec.Processing.Workers, 1)
	if p.Design.Spec.Target.Provider != myt.ProviderLocal {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t, err := ts.sshTarget(ctx, p.ID, workers)
		if ts.Secrets == nil || myt.ErrorCode(err) == myt.ENOTFOUND {
			return nil, fmt.Errorf("%w yet for this platform: it has no monitor key (it was deployed by an older MyT); update it once and MyT installs one on its host", ErrUnsupported)
		}
		if err != nil {
			return nil, fmt.Errorf("platform %d: %w", p.ID, err)
		}
		return t, nil
	}
	t := loopbackTarget(ts, p.ID, workers)
	if ts.DataDir != "" {
		t.DataDir = filepath.Join(ts.DataDir, "platforms", strconv.FormatInt(p.ID, 10), "data")
	}
	return t, nil
}

// loopbackTarget reads the platform's APIs at the loopback ports
// render/platform/compose.yaml.tmpl publishes, with ts's shared client.
func loopbackTarget(ts *Targets, platformID int64, workers int) *LocalTarget {
	t := &LocalTarget{
		Client:        ts.Client,
		ManagementURL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(render.ManagementPort)),
		Password: func(ctx context.Context) (string, error) {
			b, err := ts.Secrets.Get(ctx, platformID, render.SecretRabbitMQAdmin)
			return string(b), err
		},
	}
	t.GrafanaURL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(render.GrafanaPort))
	t.CA = func(ctx context.Context) ([]byte, error) { return ts.Secrets.Get(ctx, platformID, SecretCACert) }
	for i := range workers {
		t.WorkerURLs = append(t.WorkerURLs, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(render.WorkerHostPort+i)))
	}
	return t
}

// NewClient returns the HTTP client pollers share: no proxy (every target
// is on the loopback or a tunnel), a few idle connections per host and a
// hard cap on connections per host, so that a slow platform cannot make
// the poller open more and more. Requests are bounded by their context.
func NewClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   2,
		MaxConnsPerHost:       4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// LocalTarget polls a platform whose worker and RabbitMQ management APIs
// are reachable over HTTP from MyT: the local provider's loopback ports.
type LocalTarget struct {
	Client *http.Client
	// WorkerURLs are the workers' HTTP APIs (http://127.0.0.1:18080, then
	// one port up per further worker).
	WorkerURLs []string
	// ManagementURL is RabbitMQ's management API, read as User
	// (ManagementUser when empty).
	ManagementURL string
	User          string
	// Password returns ManagementUser's password; it is read on every
	// poll, so a rotated secret is picked up.
	Password func(ctx context.Context) (string, error)
	// VHost and Queue name the ingest queue; render.VHost and
	// worker.DefaultQueue when empty.
	VHost, Queue string
	// DataDir is the platform's data directory on this host; its file
	// system's use is disk_used_ratio. Empty: not measured.
	DataDir string
	// GrafanaURL is Grafana's HTTPS base URL (https://127.0.0.1:3000);
	// empty: Grafana is not polled. Its certificate is verified against
	// the platform's CA, which CA returns (PEM).
	GrafanaURL string
	CA         func(ctx context.Context) ([]byte, error)
	// Dial, when set, is how Grafana's client connects (an SSH tunnel's
	// DialContext); a plain dial when nil.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	grafanaCA     []byte
	grafanaClient *http.Client
}

// workerCounters are the counters read from each worker's /metrics.
var workerCounters = []string{MetricConsumed, MetricStored, MetricDropped, MetricDeadLettered, MetricHandlerErrors, MetricHandlerRestarts, MetricWriteRetries}

// handlerReasons are the dead-letter reasons that count as handler errors.
var handlerReasons = map[string]bool{worker.ReasonHandlerError: true, worker.ReasonHandlerTimeout: true,
	worker.ReasonHandlerCrash: true, worker.ReasonHandlerResult: true}

// Poll implements Target.
func (t *LocalTarget) Poll(ctx context.Context) Reading {
	// The parts are read at once, so that a hung one does not spend the
	// others' time; every goroutine ends before Poll returns.
	var r, q, g Reading
	var ackRate, ready float64
	var ok bool
	var wg sync.WaitGroup
	wg.Go(func() { ackRate, ready, ok = t.pollQueue(ctx, &q) })
	if t.GrafanaURL != "" {
		wg.Go(func() { t.pollGrafana(ctx, &g) })
	}
	t.pollWorkers(ctx, &r)
	wg.Wait()
	r.Samples, r.Components = append(r.Samples, q.Samples...), append(r.Components, q.Components...)
	r.Components = append(r.Components, g.Components...)
	if ok {
		// Lag is an estimate: how long the ready messages take to drain
		// at the current acknowledge rate. Unknown (not recorded) when
		// messages wait and none are acknowledged.
		if ready == 0 {
			r.add(MetricWorkerLag, Gauge, 0)
		} else if ackRate > 0 {
			r.add(MetricWorkerLag, Gauge, ready/ackRate)
		}
	}
	if t.DataDir != "" {
		used, err := diskUsed(t.DataDir)
		if err == nil {
			r.add(MetricDiskUsed, Gauge, used)
		}
	}
	return r
}

// pollWorkers reads every worker's /readyz and /metrics. With one worker
// its counters are the platform's series (stored_total); with several,
// each worker's are its own series (stored_total@2: WorkerMetric), which
// History.Range sums, so that one worker's restart is a reset of its
// counters only.
func (t *LocalTarget) pollWorkers(ctx context.Context, r *Reading) {
	if len(t.WorkerURLs) == 0 {
		return // nothing to say, rather than "up"
	}
	type answer struct {
		readyErr, metricsErr error
		families             map[string]*dto.MetricFamily
	}
	answers := make([]answer, len(t.WorkerURLs))
	var wg sync.WaitGroup
	for i, base := range t.WorkerURLs {
		wg.Go(func() {
			a := &answers[i]
			a.readyErr = t.get(ctx, base+"/readyz", "", nil)
			a.metricsErr = t.get(ctx, base+"/metrics", "", func(body io.Reader) error {
				p := expfmt.NewTextParser(model.UTF8Validation)
				var err error
				a.families, err = p.TextToMetricFamilies(body)
				return err
			})
		})
	}
	wg.Wait()
	var ready, readErr = true, ""
	dbUp, brokerUp, complete := 1.0, 1.0, true
	for i, a := range answers {
		if a.readyErr != nil && ready {
			ready, readErr = false, fmt.Sprintf("worker %d /readyz: %v", i+1, a.readyErr)
		}
		if a.metricsErr != nil {
			if ready {
				ready, readErr = false, fmt.Sprintf("worker %d /metrics: %v", i+1, a.metricsErr)
			}
			complete = false
			continue
		}
		families := a.families
		c := map[string]float64{
			MetricConsumed:        value(families["myt_worker_consumed_total"], nil),
			MetricStored:          value(families["myt_worker_stored_total"], nil),
			MetricDropped:         value(families["myt_worker_dropped_total"], nil),
			MetricHandlerRestarts: value(families["myt_worker_handler_restarts_total"], nil),
			MetricWriteRetries:    value(families["myt_worker_write_retries_total"], nil),
			MetricDeadLettered:    value(families["myt_worker_dead_lettered_total"], nil),
			MetricHandlerErrors: value(families["myt_worker_dead_lettered_total"], func(m *dto.Metric) bool {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						return handlerReasons[l.GetValue()]
					}
				}
				return false
			}),
		}
		for _, m := range workerCounters {
			if len(answers) == 1 {
				r.add(m, Counter, c[m])
			} else {
				// Per worker: one worker's restart is its own counters'
				// reset, not the sum's (History.Range sums the rates).
				r.add(WorkerMetric(m, i+1), Counter, c[m])
			}
		}
		dbUp = min(dbUp, value(families["myt_worker_db_up"], nil))
		brokerUp = min(brokerUp, value(families["myt_worker_broker_up"], nil))
	}
	if ready {
		r.up(ComponentWorker)
	} else {
		r.down(ComponentWorker, "%s", readErr)
	}
	if !complete {
		return // the database and broker states are not known of every worker
	}
	if dbUp == 1 {
		r.up(ComponentDatabase)
	} else {
		r.down(ComponentDatabase, "a worker reports its last database write or ping failed (myt_worker_db_up 0)")
	}
	if brokerUp == 1 {
		r.up(ComponentBrokerByWorker)
	} else {
		r.down(ComponentBrokerByWorker, "a worker reports it is not connected to the broker (myt_worker_broker_up 0)")
	}
}

// value sums the family's counter, gauge or untyped values of the metrics
// keep admits (every metric when keep is nil).
func value(f *dto.MetricFamily, keep func(*dto.Metric) bool) float64 {
	var v float64
	for _, m := range f.GetMetric() {
		if keep != nil && !keep(m) {
			continue
		}
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v
}

// queueInfo is the part of RabbitMQ's GET /api/queues/{vhost}/{name} that
// the poller reads (shape of RabbitMQ 3.13, rabbit_mgmt_stats.erl).
type queueInfo struct {
	Messages               *float64 `json:"messages"`
	MessagesReady          *float64 `json:"messages_ready"`
	MessagesUnacknowledged *float64 `json:"messages_unacknowledged"`
	MessageStats           struct {
		Publish    *float64 `json:"publish"`
		AckDetails struct {
			Rate float64 `json:"rate"`
		} `json:"ack_details"`
	} `json:"message_stats"`
}

// pollQueue reads the ingest queue from the management API: depth, the
// published counter and the acknowledge rate.
func (t *LocalTarget) pollQueue(ctx context.Context, r *Reading) (ackRate, ready float64, ok bool) {
	if t.ManagementURL == "" {
		return 0, 0, false
	}
	password, err := t.Password(ctx)
	if err != nil {
		r.down(ComponentBroker, "the management password cannot be read: %v", err)
		return 0, 0, false
	}
	vhost, queue := t.VHost, t.Queue
	if vhost == "" {
		vhost = render.VHost
	}
	if queue == "" {
		queue = worker.DefaultQueue
	}
	var q queueInfo
	u := t.ManagementURL + "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue)
	err = t.get(ctx, u, password, func(body io.Reader) error { return json.NewDecoder(body).Decode(&q) })
	if err != nil {
		r.down(ComponentBroker, "management API, queue %s: %v", queue, err)
		return 0, 0, false
	}
	if q.MessagesReady == nil {
		// A queue the broker has not sampled yet has no counts: the
		// broker answered, the depth is unknown.
		r.up(ComponentBroker)
		return 0, 0, false
	}
	r.up(ComponentBroker)
	r.add(MetricQueueDepth, Gauge, *q.MessagesReady)
	if q.MessagesUnacknowledged != nil {
		r.add(MetricQueueUnacked, Gauge, *q.MessagesUnacknowledged)
	}
	if q.MessageStats.Publish != nil {
		r.add(MetricMessagesIn, Counter, *q.MessageStats.Publish)
	}
	return q.MessageStats.AckDetails.Rate, *q.MessagesReady, true
}

// Close releases the target's own Grafana connections (the shared Client
// is the caller's).
func (t *LocalTarget) Close() {
	if t.grafanaClient != nil {
		t.grafanaClient.CloseIdleConnections()
	}
}

// pollGrafana reads Grafana's /api/health: up when it answers 200 with
// its database "ok". The client trusts only the platform's CA, and is
// made again when the CA changes.
func (t *LocalTarget) pollGrafana(ctx context.Context, r *Reading) {
	ca, err := t.CA(ctx)
	if err != nil {
		r.down(ComponentGrafana, "the platform's CA cannot be read: %v", err)
		return
	}
	if t.grafanaClient == nil || !bytes.Equal(ca, t.grafanaCA) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			r.down(ComponentGrafana, "the platform's CA is not a PEM certificate")
			return
		}
		if t.grafanaClient != nil {
			t.grafanaClient.CloseIdleConnections()
		}
		t.grafanaCA = ca
		dial := t.Dial
		if dial == nil {
			dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
		}
		t.grafanaClient = &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost:   1,
			MaxConnsPerHost:       2,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}}
	}
	var health struct {
		Database string `json:"database"`
	}
	g := &LocalTarget{Client: t.grafanaClient}
	err = g.get(ctx, t.GrafanaURL+"/api/health", "", func(body io.Reader) error { return json.NewDecoder(body).Decode(&health) })
	switch {
	case err != nil:
		r.down(ComponentGrafana, "/api/health: %v", err)
	case health.Database != "ok":
		r.down(ComponentGrafana, "/api/health: database %q", health.Database)
	default:
		r.up(ComponentGrafana)
	}
}

// maxBody bounds what a poll reads of one answer.
const maxBody = 4 << 20

// get GETs u (with ManagementUser's basic auth when password is set) and
// hands a 200 answer's body to read. Errors name the status, never the
// credentials.
func (t *LocalTarget) get(ctx context.Context, u, password string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if password != "" {
		user := t.User
		if user == "" {
			user = ManagementUser
		}
		req.SetBasicAuth(user, password)
		req.Header.Set("Accept", "application/json")
	} else {
		// Prometheus' text format (promhttp would otherwise be free to
		// choose another).
		req.Header.Set("Accept", "text/plain; version=0.0.4")
	}
	client := t.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the caller's message already
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within the poll timeout: %w", ctx.Err())
		}
		return err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxBody)
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, body)
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("HTTP %d: the credentials were refused", resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if read == nil {
		_, err = io.Copy(io.Discard, body)
		return err
	}
	if err := read(body); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	io.Copy(io.Discard, body) // drain, so the connection is reused
	return nil
}
