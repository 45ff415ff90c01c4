package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
)

// deployServer starts `myt serve` configured to deploy with the test
// environment: its local images (shipped to hosts as archives), its Docker
// engine for local platforms, and no apt refresh on hosts (test hosts
// reach no mirror). It returns the server and an admin's API client.
func deployServer(t *testing.T, e *testenv.Env, data string) (*server, *httpapi.Client) {
	t.Helper()
	images := e.ImageEnv()
	// The worker is built on the host from the myt binary, as for users;
	// only its Python base comes from the test environment.
	delete(images, "MYT_IMAGE_WORKER")
	images["MYT_IMAGE_PYTHON"] = e.Image("python")
	env := e.DockerEnv()
	cfg := map[string]any{
		"composeEnv":    images,
		"shipImages":    true,
		"env":           env,
		"ansibleVars":   map[string]any{"myt_apt_update_cache": false},
		"healthTimeout": "5m",
		"sshTimeout":    "2m",
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "deploy.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Polls every 2 s, so the monitoring checks see a few polls quickly.
	srv := startServerWith(t, data, "--deploy-config", file, "--monitor-interval", "2s")
	c := httpapi.NewClient(srv.URL, "")
	tok, err := c.Setup(context.Background(), "ada", "correct horse battery", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	c.Token = tok.Token
	return srv, c
}

// runJob starts a job and waits until it ends, failing the test unless it
// succeeded. It logs the job's log on failure.
func runJob(t *testing.T, c *httpapi.Client, platformID int64, req myt.JobRequest) *myt.Job {
	t.Helper()
	ctx := context.Background()
	j, err := c.StartJob(ctx, platformID, req)
	if err != nil {
		t.Fatalf("start %s: %v", req.Kind, err)
	}
	j = waitJob(t, c, j.ID, 15*time.Minute)
	if j.State != myt.JobSucceeded {
		t.Fatalf("%s job %d %s: %s\n%s", j.Kind, j.ID, j.State, j.Error, jobLog(t, c, j.ID))
	}
	slow := ""
	for _, l := range strings.Split(jobLog(t, c, j.ID), "\n") {
		if strings.Contains(l, "slowest tasks: ") {
			slow = "; " + strings.TrimSpace(l)
		}
	}
	t.Logf("%s job %d: %s%s", j.Kind, j.ID, stepTimes(j), slow)
	return j
}

// stepTimes says how long each of the job's steps took.
func stepTimes(j *myt.Job) string {
	var parts []string
	for _, s := range j.Steps {
		if s.Started != nil && s.Finished != nil {
			parts = append(parts, fmt.Sprintf("%s %v", s.Name, s.Finished.Sub(*s.Started).Round(100*time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}

// waitJob follows the job's log (long polls, as the CLI does) until it
// ends or waits for approval.
func waitJob(t *testing.T, c *httpapi.Client, id int64, timeout time.Duration) *myt.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var after int64
	for {
		l, err := c.JobLog(ctx, id, after, 20*time.Second)
		if err != nil {
			t.Fatalf("job %d log: %v", id, err)
		}
		for _, ch := range l.Chunks {
			after = ch.Seq
		}
		j, err := c.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if l.Done || j.State == myt.JobAwaitingApproval {
			return j
		}
	}
}

func jobLog(t *testing.T, c *httpapi.Client, id int64) string {
	var b strings.Builder
	var after int64
	for {
		l, err := c.JobLog(context.Background(), id, after, 0)
		if err != nil {
			return b.String() + "\n(log: " + err.Error() + ")"
		}
		for _, ch := range l.Chunks {
			b.WriteString(ch.Text)
			after = ch.Seq
		}
		if len(l.Chunks) == 0 {
			return b.String()
		}
	}
}

// platformHost runs commands where a platform runs (its host, or this
// machine's test engine for local).
type platformHost struct {
	name string
	// docker runs a docker CLI command there.
	docker func(t *testing.T, args ...string) string
	// mqtt is where devices connect, and the TLS server name.
	mqtt, serverName string
	// dataDir is a platform's data directory there; listDir lists a
	// directory.
	dataDir func(p *myt.Platform) string
	listDir func(t *testing.T, dir string) string
	// platformDir is where a platform's files are installed there; sh
	// runs a shell script there.
	platformDir func(p *myt.Platform) string
	sh          func(t *testing.T, script string) string
}

func createPlatform(t *testing.T, c *httpapi.Client, doc string) *myt.Platform {
	t.Helper()
	p, err := c.CreatePlatform(context.Background(), []byte(doc))
	if err != nil {
		t.Fatalf("create platform: %v", err)
	}
	return p
}

// publish sends n messages over MQTTS as the platform's device user,
// trusting only the platform's CA, each with QoS 1 (acknowledged by the
// broker).
func publish(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, device string, n int, payload func(i int) map[string]any) {
	t.Helper()
	cl := deviceClient(t, c, p, h, device)
	defer cl.Disconnect(500)
	publishOn(t, cl, device, n, payload)
}

// deviceClient connects to the platform's broker over MQTT with TLS as
// the shared device user; the caller disconnects it.
func deviceClient(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, device string) mqtt.Client {
	t.Helper()
	ctx := context.Background()
	ca, err := c.PlatformCA(ctx, p.ID)
	if err != nil {
		t.Fatalf("CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("CA is not PEM: %q", ca)
	}
	pw, err := c.PlatformSecret(ctx, p.ID, myt.SecretDevice)
	if err != nil {
		t.Fatal(err)
	}
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + h.mqtt).SetClientID("e2e-" + device).
		SetUsername("myt-device").SetPassword(pw).SetCleanSession(true).SetAutoReconnect(false).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: h.serverName, MinVersion: tls.VersionTLS12}).
		SetConnectTimeout(20 * time.Second)
	cl := mqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTTS connect to %s: %v", h.mqtt, tok.Error())
	}
	return cl
}

// publishOn publishes n messages (QoS 1) on cl and waits for every
// acknowledgement.
func publishOn(t *testing.T, cl mqtt.Client, device string, n int, payload func(i int) map[string]any) {
	t.Helper()
	var acked atomic.Int64
	toks := make([]mqtt.Token, 0, n)
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(payload(i))
		toks = append(toks, cl.Publish("myt/"+device+"/data", 1, false, b))
	}
	for _, tok := range toks {
		if tok.WaitTimeout(60*time.Second) && tok.Error() == nil {
			acked.Add(1)
		}
	}
	if acked.Load() != int64(n) {
		t.Fatalf("%d of %d publishes acknowledged", acked.Load(), n)
	}
}

// exportScript prints the worker's /v1/export (NDJSON) of one device,
// from inside the worker container.
const exportScript = `import sys, urllib.request
tok = open('/run/secrets/worker_api_token').read().strip()
req = urllib.request.Request('http://127.0.0.1:8080/v1/export?format=ndjson&device=' + sys.argv[1], headers={'Authorization': 'Bearer ' + tok})
sys.stdout.write(urllib.request.urlopen(req, timeout=60).read().decode())`

// records reads a device's records back through the worker's export,
// which every sink implements.
func records(t *testing.T, h platformHost, project, device string) []map[string]any {
	t.Helper()
	out := h.docker(t, "exec", project+"-worker-1", "python3", "-c", exportScript, device)
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// waitRecords waits until the device has want records.
func waitRecords(t *testing.T, h platformHost, project, device string, want int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		recs := records(t, h, project, device)
		if len(recs) == want {
			return recs
		}
		if len(recs) > want || time.Now().After(deadline) {
			t.Fatalf("device %s has %d records, want exactly %d", device, len(recs), want)
		}
		time.Sleep(2 * time.Second)
	}
}

// startTimes maps each of the project's containers to when it started.
func startTimes(t *testing.T, h platformHost, project string) map[string]string {
	t.Helper()
	names := strings.Fields(h.docker(t, "ps", "--all", "--filter", "label=com.docker.compose.project="+project, "--format", "{{.Names}}"))
	out := map[string]string{}
	for _, n := range names {
		out[n] = strings.TrimSpace(h.docker(t, "inspect", "--format", "{{.State.StartedAt}}", n))
	}
	return out
}

func fields(r map[string]any) map[string]any {
	f, _ := r["fields"].(map[string]any)
	return f
}

// hooks let a lifecycle do more around its first deploy.
type hooks struct {
	beforeDeploy func(p *myt.Platform)
	afterDeploy  func(p *myt.Platform)
	// redeploy runs the second deploy (default: through the API) and
	// returns its job.
	redeploy func(p *myt.Platform) *myt.Job
	// operate runs on the deployed platform after the update and the
	// handler's publishes (a full lifecycle only).
	operate func(p *myt.Platform)
}

// lifecycleWith is the whole life of one platform, as a user lives it:
// deploy, 1,000 messages stored exactly once; when full, a deploy that
// changes and restarts nothing and an update (new handler, one more typed
// field) that changes what is stored from then on and restarts neither
// broker nor database; and a destroy that removes every container and
// keeps the data. hk adds steps around the first deploy.
func lifecycleWith(t *testing.T, c *httpapi.Client, h platformHost, doc string, full bool, hk hooks) {
	p := createPlatform(t, c, doc)
	project := "myt-" + p.Name
	// A lifecycle cut short still takes its platform down, so the next
	// one finds the host's ports free.
	t.Cleanup(func() {
		cur, err := c.Platform(context.Background(), p.ID)
		if err != nil || cur.Status == myt.StatusDestroyed || cur.Status == myt.StatusDesigned {
			return
		}
		if j, err := c.StartJob(context.Background(), p.ID, myt.JobRequest{Kind: myt.JobDestroy, FinalBackup: new(false)}); err == nil {
			waitJob(t, c, j.ID, 5*time.Minute)
		}
	})
	if hk.beforeDeploy != nil {
		hk.beforeDeploy(p)
	}
	start := time.Now()
	j := runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobDeploy})
	t.Logf("deploy: %s (%s)", time.Since(start).Round(time.Second), j.Summary)
	p, err := c.Platform(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != myt.StatusRunning || p.Endpoints == nil || p.Endpoints.MQTTS == "" {
		t.Fatalf("after deploy: status %s, endpoints %+v", p.Status, p.Endpoints)
	}
	if end := p.Endpoints.CertificateExpires; end.Before(time.Now().Add(pki.ServerValidity-24*time.Hour)) || end.After(time.Now().Add(pki.ServerValidity)) {
		t.Errorf("after deploy: the recorded certificate end %s is not the new certificate's", end)
	}
	if hk.afterDeploy != nil {
		hk.afterDeploy(p)
	}

	publish(t, c, p, h, "dev-1", 1000, func(i int) map[string]any { return map[string]any{"temperature": float64(i) + 0.25} })
	recs := waitRecords(t, h, project, "dev-1", 1000)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[fmt.Sprint(r["id"])] = true
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct ids among 1000 records", len(seen))
	}
	exportThroughMyT(t, c, p, h, project)

	if full {
		before := startTimes(t, h, project)
		start = time.Now()
		if hk.redeploy != nil {
			j = hk.redeploy(p)
		} else {
			j = runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobDeploy})
		}
		t.Logf("second deploy: %s (%s)", time.Since(start).Round(time.Second), j.Summary)
		if !strings.HasPrefix(j.Summary, "Nothing changed") {
			t.Errorf("second deploy: %q, want nothing changed", j.Summary)
		}
		if after := startTimes(t, h, project); fmt.Sprint(after) != fmt.Sprint(before) || len(after) != 4 {
			t.Errorf("second deploy restarted containers:\nbefore %v\nafter  %v", before, after)
		}

		// A job stopped between installing new files and recreating the
		// services on them (killed, a lost connection) leaves the list of
		// services still to recreate on the host: the next deploy
		// recreates them though no file changes, and only them.
		pending := h.platformDir(p) + "/.recreate-pending"
		h.sh(t, "printf 'worker\\n' > "+pending)
		before = startTimes(t, h, project)
		j = runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobDeploy})
		after := startTimes(t, h, project)
		for name := range before {
			if recreated := after[name] != before[name]; recreated != strings.HasSuffix(name, "-worker-1") {
				t.Errorf("deploy after a stop before the recreate: %s started %q, now %q (only the worker is to be recreated)", name, before[name], after[name])
			}
		}
		if left := h.sh(t, "ls -A "+h.platformDir(p)); strings.Contains(left, ".recreate-pending") {
			t.Errorf("the list of services to recreate is still there after they were: %q (%s)", left, j.Summary)
		}

		// Update: a handler that scales the temperature, and humidity
		// declared as a typed field.
		updated := strings.Replace(doc, "fields: {temperature: float}", "fields: {temperature: float, humidity: float}", 1) +
			"  processing:\n    handler: |\n      def process(msg):\n          out = dict(msg['payload'])\n          out['temperature'] = out['temperature'] * 10\n          return out\n"
		if err := c.Raw(context.Background(), "PUT", fmt.Sprintf("/api/v1/platforms/%d", p.ID), []byte(updated), "application/yaml", nil); err != nil {
			t.Fatalf("update the design: %v", err)
		}
		before = startTimes(t, h, project)
		start = time.Now()
		j = runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobUpdate})
		t.Logf("update: %s (%s)", time.Since(start).Round(time.Second), j.Summary)
		// The new handler and field recreate the worker (and Grafana,
		// whose dashboard shows the field); the broker and the database
		// keep running.
		after = startTimes(t, h, project)
		db := project + "-" + p.Design.Spec.Database.Kind + "-1"
		for _, name := range []string{project + "-rabbitmq-1", db} {
			if before[name] == "" || after[name] != before[name] {
				t.Errorf("the update restarted %s: started %q, now %q", name, before[name], after[name])
			}
		}
		if w := project + "-worker-1"; after[w] == before[w] {
			t.Errorf("the update did not recreate the worker (started %q)", after[w])
		}
		publish(t, c, p, h, "dev-2", 10, func(i int) map[string]any { return map[string]any{"temperature": 2.5, "humidity": 40.0 + float64(i)} })
		recs = waitRecords(t, h, project, "dev-2", 10)
		for _, r := range recs {
			f := fields(r)
			if fmt.Sprint(f["temperature"]) != "25" || f["humidity"] == nil {
				t.Errorf("record after the update: %v, want temperature 25 (the new handler) and humidity", f)
				break
			}
		}
		if n := len(records(t, h, project, "dev-1")); n != 1000 {
			t.Errorf("after the update dev-1 has %d records, want 1000", n)
		}
		codeDayTwo(t, c, p, h, project)
		if hk.operate != nil {
			hk.operate(p)
		}
	}

	start = time.Now()
	j = runJob(t, c, p.ID, destroyRequest(t, c, p, h))
	t.Logf("destroy: %s (%s)", time.Since(start).Round(time.Second), j.Summary)
	if left := strings.TrimSpace(h.docker(t, "ps", "--all", "--filter", "label=com.docker.compose.project="+project, "--format", "{{.Names}}")); left != "" {
		t.Errorf("containers left after destroy: %s", left)
	}
	if ls := h.listDir(t, h.dataDir(p)); !strings.Contains(ls, "-data") {
		t.Errorf("data directory %s after destroy: %q, want the volumes kept", h.dataDir(p), ls)
	}
	p, err = c.Platform(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != myt.StatusDestroyed || p.Endpoints != nil {
		t.Errorf("after destroy: status %s, endpoints %+v", p.Status, p.Endpoints)
	}
}

// steadyRate sends rate messages a second for d, as a fleet does, and
// checks that the monitor's history of the platform shows that rate,
// within 10 %, both coming in (the broker's publish counter) and stored
// (the workers' counters), read through the API as a chart reads it.
func steadyRate(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, rate int, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	const tick = 250 * time.Millisecond
	per := rate * int(tick) / int(time.Second)
	// One connection, as a fleet of always-connected devices: RabbitMQ
	// counts a channel's publishes in statistics it emits every 5 s, and a
	// connection closed before its next emission takes its last counts
	// with it (docs/monitor.md), so it stays open until they are out.
	cl := deviceClient(t, c, p, h, "dev-rate")
	start := time.Now()
	sent := 0
	for next := start; next.Before(start.Add(d)); next = next.Add(tick) {
		time.Sleep(time.Until(next))
		base := sent
		publishOn(t, cl, "dev-rate", per, func(i int) map[string]any { return map[string]any{"temperature": 20.0, "n": base + i} })
		sent += per
	}
	end := time.Now()
	defer cl.Disconnect(500)
	if late := end.Sub(start) - d; late > d/10 {
		t.Fatalf("sending %d messages took %s, %s longer than planned: the rate sent is not %d/s", sent, end.Sub(start).Round(time.Millisecond), late.Round(time.Millisecond), rate)
	}
	sentRate := float64(sent) / end.Sub(start).Seconds()
	for _, metric := range []string{"messages_in_total", "stored_total"} {
		// Each point is the rate since the poll before: the increase over
		// the traffic is the sum of rate × interval of the polls after it
		// began, and that over the time of sending is the rate the history
		// shows for it. RabbitMQ updates its statistics every 5 s, and
		// its management database takes a while longer to serve them, so
		// the increase is read until it has not changed for 15 s.
		increase, prev, n, same := 0.0, -1.0, 0, 0
		var series httpapi.MetricSeries
		for deadline := time.Now().Add(2 * time.Minute); same < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("metric %s: its increase over the traffic still changes two minutes after it (%.0f, then %.0f)", metric, prev, increase)
			}
			time.Sleep(5 * time.Second)
			prev = increase
			if err := c.Raw(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d/metrics/%s?range=10m", p.ID, metric), nil, "", &series); err != nil {
				t.Fatalf("metric %s: %v", metric, err)
			}
			increase, n = 0, 0
			for i := 1; i < len(series.Points); i++ {
				pt, before := series.Points[i], series.Points[i-1]
				if pt.Time.After(start) {
					increase += pt.Value * pt.Time.Sub(before.Time).Seconds()
					n++
				}
			}
			increase = math.Round(increase)
			if increase == prev {
				same++
			} else {
				same = 0
			}
		}
		if n < 10 {
			t.Fatalf("metric %s: %d polls since the traffic began (%d points in all): the monitor does not poll every 2 s", metric, n, len(series.Points))
		}
		got := increase / end.Sub(start).Seconds()
		t.Logf("steady traffic: sent %d messages, %.1f msg/s; the history of %s shows %.0f, %.1f/s (%d polls, %s resolution)", sent, sentRate, metric, increase, got, n, series.Resolution)
		if got < sentRate*0.9 || got > sentRate*1.1 {
			t.Errorf("%s shows %.1f/s while %.1f/s were sent: more than 10 %% off", metric, got, sentRate)
		}
	}
}

// databaseDownAlert stops the platform's database container for longer
// than the component-down rule's window and starts it again: a signed
// webhook at a local receiver gets exactly one "firing" and one
// "resolved" for that rule, and the alert history shows both delivered.
func databaseDownAlert(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, project string) {
	t.Helper()
	ctx := context.Background()
	const secret = "e2e-webhook-signing-secret"
	type hit struct {
		alert.Payload
		signed bool
	}
	var mu sync.Mutex
	var hits []hit
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var pl alert.Payload
		if err := json.Unmarshal(body, &pl); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		mu.Lock()
		hits = append(hits, hit{pl, r.Header.Get(alert.SignatureHeader) == alert.Sign([]byte(secret), body)})
		mu.Unlock()
	}))
	defer recv.Close()
	var ch alert.Channel
	if err := c.Raw(ctx, "POST", fmt.Sprintf("/api/v1/platforms/%d/alerts/channels", p.ID),
		mustJSON(t, map[string]any{"name": "e2e receiver", "url": recv.URL + "/hook", "secret": secret}), "application/json", &ch); err != nil {
		t.Fatalf("add the webhook channel: %v", err)
	}
	// The default rules come with the platform's first poll.
	var rule httpapi.AlertRule
	deadline := time.Now().Add(time.Minute)
	for rule.ID == 0 {
		var rules []httpapi.AlertRule
		if err := c.Raw(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d/alerts/rules", p.ID), nil, "", &rules); err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if r.Kind == alert.KindDown {
				rule = r
			}
		}
		if rule.ID == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no component-down rule a minute after the deploy: %+v", rules)
			}
			time.Sleep(time.Second)
		}
	}
	// A shorter window than the default 2 minutes, for the test's sake.
	if err := c.Raw(ctx, "PATCH", fmt.Sprintf("/api/v1/platforms/%d/alerts/rules/%d", p.ID, rule.ID),
		mustJSON(t, map[string]any{"for": "8s", "clearFor": "6s"}), "application/json", nil); err != nil {
		t.Fatalf("shorten the rule: %v", err)
	}
	count := func(state string) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range hits {
			if x.Rule == rule.Name && x.State == state {
				n++
				if !x.signed {
					t.Errorf("a %s notification without a valid signature", state)
				}
			}
		}
		return n
	}
	waitFor := func(state string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for count(state) == 0 {
			if time.Since(start) > within {
				t.Fatalf("no %q notification within %s (got %+v)", state, within, hits)
			}
			time.Sleep(500 * time.Millisecond)
		}
		return time.Since(start)
	}
	db := project + "-" + p.Design.Spec.Database.Kind + "-1"
	h.docker(t, "stop", db)
	fired := waitFor(alert.Fired, 45*time.Second)
	h.docker(t, "start", db)
	resolved := waitFor(alert.Resolved, 90*time.Second)
	time.Sleep(8 * time.Second) // a storm would show now
	t.Logf("database stopped: firing after %s (rule window 8 s, polls every 2 s); started again: resolved after %s", fired.Round(time.Second), resolved.Round(time.Second))
	if f, r := count(alert.Fired), count(alert.Resolved); f != 1 || r != 1 {
		t.Errorf("%d firing and %d resolved notifications, want exactly one each", f, r)
	}
	var evs httpapi.AlertEvents
	if err := c.Raw(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d/alerts/events", p.ID), nil, "", &evs); err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, ev := range evs.Events {
		if ev.RuleID == rule.ID {
			states[ev.State]++
			if len(ev.Deliveries) != 1 || ev.Deliveries[0].Status != alert.Delivered {
				t.Errorf("event %d (%s): deliveries %+v, want one delivered", ev.ID, ev.State, ev.Deliveries)
			}
		}
	}
	if states[alert.Fired] != 1 || states[alert.Resolved] != 1 {
		t.Errorf("alert history: %v, want one firing and one resolved", states)
	}
	// The channel goes: the other checks' containers stop and start too.
	if err := c.Raw(ctx, "DELETE", fmt.Sprintf("/api/v1/platforms/%d/alerts/channels/%d", p.ID, ch.ID), nil, "", nil); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// browserOperate is day 2 in headless Chromium on the running platform
// the checks above left behind (traffic, an alert fired and resolved,
// handler versions v1-v4): the platform page's health and charts, the
// alert history, the dead letters (none left), code tried in the
// platform's worker and published from the code editor, the version's
// diff, and a rollback clicked in the versions table. Every page is screenshotted
// and checked with axe-core.
func browserOperate(t *testing.T, c *httpapi.Client, p *myt.Platform) {
	t.Helper()
	chromiumPath(t)
	b := newBrowser(t, c.BaseURL)
	b.signIn("ada", "correct horse battery")
	b.waitPath("/")
	page := fmt.Sprintf("/platforms/%d", p.ID)
	b.open(page)
	b.waitFor("the health card", `document.querySelector('#health') !== null`)
	b.waitFor("a chart with data", `document.querySelectorAll('.chart svg polyline').length > 0`)
	if h := b.text("#health"); !strings.Contains(h, "Database") {
		t.Errorf("health card: %q", h)
	}
	b.screenshot("50-operate-platform-charts")

	b.open(page + "/alerts")
	b.waitFor("the alert history", `document.querySelector('#history') !== null`)
	if h := b.text("#history"); !strings.Contains(h, "Fired") || !strings.Contains(h, "Resolved") {
		t.Errorf("alert history: %q, want a firing and a resolved event", h)
	}
	b.screenshot("51-operate-alert-history")

	b.open(page + "/dead")
	b.waitFor("the dead letters", `document.querySelector('#dead') !== null`)
	b.screenshot("51b-operate-dead-letters")

	const v5 = "def process(msg):\n    out = dict(msg['payload'])\n    out['temperature'] = out['temperature'] * 1000\n    return out\n"
	b.open(page + "/handler")
	b.waitFor("the versions", `document.querySelector('#versions') !== null`)
	b.fill("#f-handler", v5)
	b.fill("#f-samples", "{\"temperature\": 2}\n{\"humidity\": 1}\n")
	b.submit(`button[name=action][value=try]`)
	b.waitFor("the results", `document.querySelector('#results') !== null`)
	if res := b.text("#results"); !strings.Contains(res, "2000") || !strings.Contains(res, "handler-error") {
		t.Errorf("the results of trying the code: %q, want a record with 2000 and a handler-error", res)
	}
	b.screenshot("52-operate-code-tried")
	b.submit(`button[name=action][value=publish]`)
	b.waitPath("/jobs/")
	waitJobPage := func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			st := eval[string](b, `document.querySelector('#job').dataset.jobState`)
			if st == "succeeded" {
				return
			}
			if st == "failed" || st == "cancelled" || time.Now().After(deadline) {
				t.Fatalf("the job page shows %s:\n%s", st, b.text("#job-log"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitJobPage()
	b.see("SUCCEEDED")
	b.screenshot("53-operate-publish-succeeded")

	b.open(page + "/handler/versions/5")
	b.waitFor("the diff", `document.querySelectorAll('.diff-line.diff-add').length > 0`)
	lines := func(sel string) string {
		return eval[string](b, fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.innerText).join("\n")`, sel))
	}
	if add, del := lines(".diff-line.diff-add"), lines(".diff-line.diff-del"); !strings.Contains(add, "* 1000") || !strings.Contains(del, "* 10") {
		t.Errorf("v5's diff: added %q, removed %q", add, del)
	}
	b.screenshot("54-operate-code-diff")

	b.open(page + "/handler")
	b.waitFor("v5 running", `document.querySelector('#versions').innerText.includes('v5')`)
	b.screenshot("55-operate-code-versions")
	eval[bool](b, "(window.confirm = () => true, true)")
	b.submit(`form[action$="/handler/versions/2/rollback"] button`)
	b.waitPath("/jobs/")
	waitJobPage()
	vs, err := c.CodeVersions(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 6 || vs[0].SameAs != 2 || vs[0].Author != "ada" || vs[0].JobKind != myt.JobPublish {
		t.Errorf("versions after the rollback clicked in the browser: %+v", vs[0])
	}
	b.open(page + "/handler")
	b.waitFor("v6 running", `document.querySelector('#versions').innerText.includes('same as v2')`)
	b.narrow("56-operate-code-versions-mobile")
}

// codeDayTwo is the handler's life after the update that gave the
// platform one (v1, temperature × 10): a new handler (× 100) published in
// the middle of steady traffic switches the stored values from one point
// on, with every message stored exactly once and no container restarted;
// a handler that does not load is refused and the old one keeps running;
// a rollback to v1 brings × 10 back; the history keeps every version.
func codeDayTwo(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, project string) {
	t.Helper()
	ctx := context.Background()
	const v2 = "def process(msg):\n    out = dict(msg['payload'])\n    out['temperature'] = out['temperature'] * 100\n    return out\n"
	hostFile := h.platformDir(p) + "/worker/handler/handler.py"
	before := startTimes(t, h, project)
	const chunks, per = 16, 40
	seq := 0
	send := func() {
		base := seq
		publish(t, c, p, h, "dev-3", per, func(i int) map[string]any { return map[string]any{"temperature": 1.0, "seq": base + i} })
		seq += per
	}
	var j *myt.Job
	start := time.Now()
	for k := range chunks {
		send()
		time.Sleep(300 * time.Millisecond)
		if k == 3 {
			var err error
			if j, err = c.PublishCode(ctx, p.ID, v2); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	j = waitJob(t, c, j.ID, 5*time.Minute)
	if j.State != myt.JobSucceeded {
		t.Fatalf("publish job %d %s: %s\n%s", j.ID, j.State, j.Error, jobLog(t, c, j.ID))
	}
	t.Logf("publish mid-traffic: %s; %s (%s)", time.Since(start).Round(time.Second), stepTimes(j), j.Summary)
	if after := startTimes(t, h, project); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the publish restarted containers:\nbefore %v\nafter  %v", before, after)
	}
	if got := h.sh(t, "cat "+hostFile); got != v2 {
		t.Errorf("handler on the host after the publish: %q", got)
	}
	// Every message once; by seq, × 10 then × 100 and never back.
	recs := waitRecords(t, h, project, "dev-3", chunks*per)
	bySeq := map[int]float64{}
	for _, r := range recs {
		f := fields(r)
		n, _ := f["seq"].(float64)
		temp, _ := f["temperature"].(float64)
		if _, dup := bySeq[int(n)]; dup {
			t.Errorf("seq %v stored twice", f["seq"])
		}
		bySeq[int(n)] = temp
	}
	switched, old, new := -1, 0, 0
	for i := range chunks * per {
		temp, ok := bySeq[i]
		switch {
		case !ok:
			t.Errorf("seq %d was not stored", i)
		case temp == 10 && switched < 0:
			old++
		case temp == 100:
			if switched < 0 {
				switched = i
			}
			new++
		default:
			t.Errorf("seq %d stored temperature %v (switched to × 100 at seq %d)", i, temp, switched)
		}
	}
	if old == 0 || new == 0 {
		t.Errorf("%d messages × 10 and %d × 100: the publish did not land mid-traffic", old, new)
	}
	t.Logf("publish mid-traffic: %d messages × 10, then %d × 100, none lost or repeated", old, new)

	// A handler that does not load, pushed with the CLI: refused, the old
	// one keeps running.
	cli := []string{"MYT_SERVER=" + c.BaseURL, "MYT_TOKEN=" + c.Token, "HOME=" + t.TempDir()}
	badFile := filepath.Join(t.TempDir(), "handler.py")
	if err := os.WriteFile(badFile, []byte("def process(msg):\n    return (\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failCLI(t, cli, "", "refused the handler", "code", "push", p.Name, badFile)
	jobs, err := c.Jobs(ctx, p.ID, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatal(jobs, err)
	}
	bad := jobs[0]
	cur, err := c.Platform(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bad.State != myt.JobFailed || !strings.Contains(bad.Error, "refused the handler") || cur.Status != myt.StatusRunning {
		t.Errorf("broken handler: job %s (%q), platform %s; want failed, refused, running", bad.State, bad.Error, cur.Status)
	}
	if got := h.sh(t, "cat "+hostFile); got != v2 {
		t.Errorf("handler on the host after a refused publish: %q", got)
	}

	vs, err := c.CodeVersions(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Version != 2 || vs[0].Code != v2 || vs[0].JobKind != myt.JobPublish || !vs[0].Running || vs[1].JobKind != myt.JobUpdate {
		t.Fatalf("versions after the publish: %+v", vs)
	}
	if d := mustCLI(t, cli, "", "code", "history", p.Name, "--show", "2"); !strings.Contains(d, "--- v1\n+++ v2\n") || !strings.Contains(d, "+    out['temperature'] = out['temperature'] * 100\n") {
		t.Errorf("myt code history --show 2:\n%s", d)
	}
	// Rollback with the CLI, which follows the job to its end.
	if out := mustCLI(t, cli, "", "code", "rollback", p.Name, "1"); !strings.Contains(out, "Handler published to 1 worker(s)") {
		t.Errorf("myt code rollback:\n%s", out)
	}
	if h := mustCLI(t, cli, "", "code", "history", p.Name); !strings.Contains(h, "same as v1") || !strings.Contains(h, "running") {
		t.Errorf("myt code history:\n%s", h)
	}
	publish(t, c, p, h, "dev-4", 5, func(i int) map[string]any { return map[string]any{"temperature": 3.0, "n": i} })
	for _, r := range waitRecords(t, h, project, "dev-4", 5) {
		if f := fields(r); fmt.Sprint(f["temperature"]) != "30" {
			t.Errorf("record after the rollback: %v, want temperature 30 (v1's × 10)", f)
			break
		}
	}
	vs, err = c.CodeVersions(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].SameAs != 1 || !vs[0].Running {
		t.Errorf("versions after the rollback: %+v", vs)
	}
	deadLetters(t, c, p, h, project)
}

// deadLetters: messages v1 cannot handle (no temperature) are
// dead-lettered with the reason; a fixed handler, tried on those dead
// letters in the worker first, is published, and a replay stores each of
// them exactly once; a purge deletes what remains.
func deadLetters(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, project string) {
	t.Helper()
	ctx := context.Background()
	const n = 20
	publish(t, c, p, h, "dev-5", n, func(i int) map[string]any { return map[string]any{"humidity": 50.0 + float64(i)} })
	var dl myt.DeadLetters
	deadline := time.Now().Add(time.Minute)
	for dl.Total < n {
		if err := c.Raw(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d/dead?limit=100", p.ID), nil, "", &dl); err != nil {
			t.Fatalf("dead letters: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters a minute after %d messages the handler cannot take", dl.Total, n)
		}
		time.Sleep(time.Second)
	}
	if dl.Total != n || len(dl.Items) != n || dl.Items[0].Reason != "handler-error" || dl.Items[0].Device != "dev-5" || !strings.Contains(dl.Items[0].Detail, "KeyError") {
		t.Fatalf("dead letters: total %d, first %+v", dl.Total, dl.Items[0])
	}
	// The fix, tried on the dead letters in the platform's worker: every
	// one would be stored; then the poison it will refuse.
	const fixed = "def process(msg):\n    out = dict(msg['payload'])\n    if out.get('poison'):\n        raise ValueError('poison')\n    if 'temperature' in out:\n        out['temperature'] = out['temperature'] * 10\n    return out\n"
	var try myt.CodeTest
	if err := c.Raw(ctx, "POST", fmt.Sprintf("/api/v1/platforms/%d/code/test", p.ID), mustJSON(t, map[string]any{"code": fixed, "deadLetters": n}), "application/json", &try); err != nil {
		t.Fatalf("try the fix on the dead letters: %v", err)
	}
	if len(try.Results) != n || try.Failed != 0 || len(try.Results[0].Records) != 1 {
		t.Fatalf("the fix tried on the dead letters: %d results, %d failed: %+v", len(try.Results), try.Failed, try.Results[0])
	}
	if err := c.Raw(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d/dead", p.ID), nil, "", &dl); err != nil || dl.Total != n {
		t.Fatalf("trying code changed the dead letters: %d (%v)", dl.Total, err)
	}
	j, err := c.PublishCode(ctx, p.ID, fixed)
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, c, j.ID, 5*time.Minute); j.State != myt.JobSucceeded {
		t.Fatalf("publish the fix: %s %s", j.State, j.Error)
	}
	var rep myt.DeadLetterReplay
	if err := c.Raw(ctx, "POST", fmt.Sprintf("/api/v1/platforms/%d/dead/replay", p.ID), nil, "", &rep); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if rep.Replayed != n || rep.Remaining != 0 {
		t.Errorf("replay: %+v, want %d replayed, none left", rep, n)
	}
	recs := waitRecords(t, h, project, "dev-5", n)
	seen := map[float64]bool{}
	for _, r := range recs {
		seen[fields(r)["humidity"].(float64)] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct messages among the %d replayed records", len(seen), len(recs))
	}
	time.Sleep(3 * time.Second) // a second storing would show now
	if got := len(records(t, h, project, "dev-5")); got != n {
		t.Errorf("after the replay dev-5 has %d records, want %d", got, n)
	}
	// Poison: dead again, then purged.
	publish(t, c, p, h, "dev-6", 3, func(i int) map[string]any { return map[string]any{"poison": true, "n": i} })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		if err := c.Raw(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d/dead", p.ID), nil, "", &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Total == 3 || time.Now().After(deadline) {
			break
		}
	}
	var purged httpapi.PurgeResponse
	if err := c.Raw(ctx, "DELETE", fmt.Sprintf("/api/v1/platforms/%d/dead", p.ID), nil, "", &purged); err != nil {
		t.Fatal(err)
	}
	if err := c.Raw(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d/dead", p.ID), nil, "", &dl); err != nil {
		t.Fatal(err)
	}
	if purged.Purged != 3 || dl.Total != 0 {
		t.Errorf("purge: %d purged, %d left; want 3 and none", purged.Purged, dl.Total)
	}
	t.Logf("dead letters: %d listed with their reason, tried and replayed once each after the fix; 3 purged", n)
}

// TestDeployLocal drives local platforms' lives through the API exactly
// as the UI does, on this machine's engine: TimescaleDB's whole life with a
// crash of the server in the middle of the first deploy, then MongoDB's and
// InfluxDB's (deploy, 1,000 messages, destroy). It runs beside
// TestDeploySSH, with a server of its own (the crash must not touch the
// other's jobs).
func TestDeployLocal(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	testenv.Need(t, "root", os.Geteuid() == 0, "a local platform's secret files are chowned to the services' users")
	e.LocalPlatformPorts(t)
	// A run that was killed may have left its platforms on the engine:
	// they would hold the ports these publish.
	for _, name := range []string{"here", "here-mongodb", "here-influxdb", "here-restored"} {
		if left := strings.Fields(e.Docker(t, "ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=myt-"+name)); len(left) > 0 {
			t.Logf("removing %d containers left by an earlier run", len(left))
			e.Docker(t, append([]string{"rm", "--force", "--volumes"}, left...)...)
		}
	}
	data := t.TempDir()
	srv, c := deployServer(t, e, data)
	top := t // the restarted server must outlive the subtest that restarts it
	local := platformHost{
		name:        "local",
		docker:      func(t *testing.T, args ...string) string { return e.Docker(t, args...) },
		mqtt:        "127.0.0.1:8883",
		serverName:  "127.0.0.1",
		dataDir:     func(p *myt.Platform) string { return filepath.Join(data, "platforms", fmt.Sprint(p.ID), "data") },
		platformDir: func(p *myt.Platform) string { return filepath.Join(data, "platforms", fmt.Sprint(p.ID), "platform") },
		sh: func(t *testing.T, script string) string {
			out, err := exec.Command("sh", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("sh -c %q: %v\n%s", script, err, out)
			}
			return string(out)
		},
		listDir: func(t *testing.T, dir string) string {
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			return strings.Join(names, " ")
		},
	}
	t.Run("local", func(t *testing.T) {
		var ps psSampler
		stop := ps.start()
		var secrets []string
		bc := &backupCheck{data: data}
		lifecycleWith(t, c, local, `apiVersion: myt/v1
kind: Platform
metadata: {name: here}
spec:
  target: {provider: local}
  database: {kind: timescaledb, fields: {temperature: float}}
`, true, hooks{
			// kill -9 of the server in the middle of the first deploy:
			// after a restart the job is interrupted, and the deploy
			// that follows converges.
			beforeDeploy: func(p *myt.Platform) {
				j, err := c.StartJob(context.Background(), p.ID, myt.JobRequest{Kind: myt.JobDeploy})
				if err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(5 * time.Minute)
				for {
					j, err = c.Job(context.Background(), j.ID)
					if err != nil {
						t.Fatal(err)
					}
					if s := j.Step("compose"); s != nil && s.State == myt.StepRunning {
						break
					}
					if !j.Active() || time.Now().After(deadline) {
						t.Fatalf("job %d never reached the compose step: %s %s", j.ID, j.State, j.Error)
					}
					time.Sleep(200 * time.Millisecond)
				}
				time.Sleep(3 * time.Second) // compose is at work
				srv.kill(t)
				srv = startServerWith(top, data, srv.flags...)
				c.BaseURL = srv.URL
				j, err = c.Job(context.Background(), j.ID)
				if err != nil {
					t.Fatal(err)
				}
				pl, err := c.Platform(context.Background(), p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if j.State != myt.JobInterrupted || pl.Status != myt.StatusFailed {
					t.Fatalf("after kill -9 and restart: job %s (%s), platform %s; want interrupted, failed", j.State, j.Error, pl.Status)
				}
				if ents, _ := os.ReadDir(filepath.Join(data, "jobs")); len(ents) != 0 {
					t.Errorf("job directories left after the restart: %v", ents)
				}
			},
			operate: func(p *myt.Platform) {
				carryOut(t, c, p)
				steadyRate(t, c, p, local, 40, 30*time.Second)
				databaseDownAlert(t, c, p, local, "myt-"+p.Name)
				browserOperate(t, c, p)
				bc.dayTwo(t, c, p, local, func() { srv.kill(t); srv = startServerWith(top, data, srv.flags...); c.BaseURL = srv.URL })
				devicesOperate(t, c, p, local)
				browserOwnData(t, c, p)
			},
			afterDeploy: func(p *myt.Platform) {
				dir := filepath.Join(data, "platforms", fmt.Sprint(p.ID), "platform", "secrets")
				for _, name := range []string{"db_password", "rabbitmq_worker_password", "worker_api_token", "grafana_admin_password", "rabbitmq_tls_key"} {
					b, err := os.ReadFile(filepath.Join(dir, name))
					if err != nil {
						t.Fatal(err)
					}
					for _, l := range strings.Split(string(b), "\n") {
						if l = strings.TrimSpace(l); len(l) >= 16 && !strings.HasPrefix(l, "-----") {
							secrets = append(secrets, l)
						}
					}
				}
				dev, err := c.PlatformSecret(context.Background(), p.ID, myt.SecretDevice)
				if err != nil {
					t.Fatal(err)
				}
				secrets = append(secrets, dev)
			},
		})
		bc.restoreIntoNew(t, c, local, "here")
		samples := stop()
		if len(secrets) < 6 {
			t.Fatalf("collected %d secrets", len(secrets))
		}
		// No secret in any process's argv, in any job log, or in a file of
		// MyT's data dir outside the platform's own runtime files.
		for _, sec := range secrets {
			if strings.Contains(samples, sec) {
				t.Errorf("a secret appeared in ps argv")
			}
		}
		jobs, err := c.Jobs(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			l := jobLog(t, c, j.ID)
			for _, sec := range secrets {
				if strings.Contains(l, sec) {
					t.Errorf("job %d's log shows a secret", j.ID)
				}
			}
		}
		filepath.WalkDir(data, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, ".tar") || strings.HasPrefix(filepath.Base(path), "myt.db") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for _, sec := range secrets {
				if strings.Contains(string(b), sec) {
					t.Errorf("%s holds a secret in plaintext", path)
					break
				}
			}
			return nil
		})
		t.Logf("sampled ps %d times during the local lifecycle", ps.n.Load())
	})
	for _, db := range []string{"mongodb", "influxdb"} {
		t.Run("local-"+db, func(t *testing.T) {
			var hk hooks
			if db == "mongodb" {
				// A service stopped behind MyT's back: a deploy starts it
				// again, and does not say that nothing changed.
				hk.afterDeploy = func(p *myt.Platform) {
					worker := "myt-" + p.Name + "-worker-1"
					e.Docker(t, "stop", worker)
					j := runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobDeploy})
					if strings.HasPrefix(j.Summary, "Nothing changed") {
						t.Errorf("the deploy that started the stopped worker says %q", j.Summary)
					}
					if st := strings.TrimSpace(e.Docker(t, "inspect", "--format", "{{.State.Status}}", worker)); st != "running" {
						t.Errorf("worker %s after the deploy", st)
					}
					carryIn(t, local, "myt-"+p.Name)
				}
			}
			lifecycleWith(t, c, local, fmt.Sprintf(`apiVersion: myt/v1
kind: Platform
metadata: {name: here-%s}
spec:
  target: {provider: local}
  database: {kind: %s, fields: {temperature: float}}
`, db, db), false, hk)
		})
	}
}

// TestDeploySSH drives a deploy through the API exactly as the UI does:
// an SSH credential for a real Debian 12 host with systemd, where the
// whole role set runs (base, data_volume on the design's data disk,
// docker, platform), and MySQL's whole life on it: the server checked as
// its operator would, a second deploy clicked in a real browser, an
// update, a destroy. (The other databases live their lives as local
// platforms in TestDeployLocal: the same bundle, without Ansible.)
func TestDeploySSH(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	testenv.Need(t, "root", os.Geteuid() == 0, "systemd test hosts attach a loop device")
	srv, c := deployServer(t, e, t.TempDir())
	h := e.SystemdHost(t)
	key, err := os.ReadFile(h.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCredential(context.Background(), httpapi.CredentialRequest{Name: "lab", Kind: "ssh",
		Public: map[string]string{"host": h.Addr, "user": h.User, "port": fmt.Sprint(h.Port)}, Secret: map[string]string{"private_key": string(key)}}); err != nil {
		t.Fatal(err)
	}
	remote := platformHost{
		name:        "ssh",
		docker:      func(t *testing.T, args ...string) string { return h.Run(t, "docker "+shellJoin(args)) },
		mqtt:        h.Addr + ":8883",
		serverName:  h.Addr,
		dataDir:     func(*myt.Platform) string { return "/srv/myt/data" },
		listDir:     func(t *testing.T, dir string) string { return h.Run(t, "ls "+dir) },
		platformDir: func(*myt.Platform) string { return "/srv/myt/platform" },
		sh:          func(t *testing.T, script string) string { return h.Run(t, script) },
	}
	lifecycleWith(t, c, remote, `apiVersion: myt/v1
kind: Platform
metadata: {name: lab-mysql}
spec:
  # The server as a sysadmin sets it up: its spare disk holds the data,
  # SSH and the admin ports only from the lab.
  target: {provider: ssh, credentials: lab, dataDevice: `+h.DataDevice+`, adminCIDRs: ["10.250.0.0/16"]}
  database: {kind: mysql, fields: {temperature: float}}
`, true, hooks{
		afterDeploy: func(p *myt.Platform) { checkServer(t, h, "myt-"+p.Name, "mysql") },
		// By now (1,000 messages later) the monitor has polled the
		// platform through its SSH tunnel. The second run is clicked in
		// a real browser, which follows the live log to success.
		redeploy: func(p *myt.Platform) *myt.Job {
			checkMonitoredOverSSH(t, srv, h, p)
			return browserUpdate(t, c, p)
		},
	})
	// The destroy took the monitor key off the host.
	if got := h.Run(t, "grep -c myt-monitor: /root/.ssh/authorized_keys || true"); got != "0\n" {
		t.Errorf("monitor key lines left on the host after destroy: %q", got)
	}
}

// checkServer looks at the server after a deploy as its operator would:
// the data directory is an ext4 mount of the design's data disk (by UUID
// in fstab) holding the database, which Docker waits for; container logs
// rotate; the firewall table is loaded with the
// admin networks and its unit, like Docker's, enabled and active; every
// secret file is 0600 and owned by the service that reads it.
func checkServer(t *testing.T, h *testenv.SystemdHost, project, db string) {
	t.Helper()
	if got := strings.Fields(h.Run(t, "findmnt --noheadings --output SOURCE,FSTYPE --mountpoint /srv/myt/data")); strings.Join(got, " ") != h.DataDevice+" ext4" {
		t.Errorf("/srv/myt/data is mounted from %q, want %s ext4", got, h.DataDevice)
	}
	dbDir := "/srv/myt/data/" + db + "-data"
	if got := h.Run(t, "findmnt --noheadings --output SOURCE --target "+dbDir+"; test -n \"$(ls -A "+dbDir+")\" && echo has-data || true"); got != h.DataDevice+"\nhas-data\n" {
		t.Errorf("database files on the data disk: %q", got)
	}
	if got := h.Run(t, "grep -c ' /srv/myt/data ext4 ' /proc/mounts; grep -c '^UUID=.* /srv/myt/data ' /etc/fstab"); got != "1\n1\n" {
		t.Errorf("mounts and fstab lines for /srv/myt/data: %q", got)
	}
	if got := h.Run(t, "systemctl show --property RequiresMountsFor docker.service"); !strings.Contains(got, "/srv/myt/data") {
		t.Errorf("docker.service does not wait for the data volume: %q", got)
	}
	if got := h.Run(t, "docker inspect --format '{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}' "+project+"-"+db+"-1"); got != "json-file 10m\n" {
		t.Errorf("the database's log does not rotate: %q", got)
	}
	if out := h.Run(t, "nft list table inet myt"); !strings.Contains(out, "chain input") || !strings.Contains(out, "10.250.0.0/16") {
		t.Errorf("nft table inet myt:\n%s", out)
	}
	// systemd-timesyncd is enabled by the base role (the test host has it
	// off); in a container its ConditionVirtualization keeps it idle.
	if got := h.Run(t, "systemctl is-enabled systemd-timesyncd.service || true"); got != "enabled\n" {
		t.Errorf("the clock service is not enabled: systemctl is-enabled says %q", got)
	}
	if got := h.Run(t, "systemctl is-enabled myt-firewall.service docker.service; systemctl is-active myt-firewall.service docker.service"); got != "enabled\nenabled\nactive\nactive\n" {
		t.Errorf("myt-firewall and docker units (enabled, enabled, active, active): %q", got)
	}
	owner := map[string]int{"rabbitmq_definitions.json": render.UIDs["rabbitmq"], "db_dsn": render.UIDs["worker"],
		"grafana_admin_password": render.UIDs["grafana"], "db_password": render.UIDs["db"]}
	stat := h.Run(t, "cd /srv/myt/platform/secrets && stat -c '%n %a %u' *")
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(stat), "\n") {
		var name string
		var mode string
		var uid int
		if _, err := fmt.Sscan(line, &name, &mode, &uid); err != nil {
			t.Fatalf("stat line %q: %v", line, err)
		}
		if mode != "600" {
			t.Errorf("secret %s has mode %s, want 600", name, mode)
		}
		if want, ok := owner[name]; ok {
			seen++
			if uid != want {
				t.Errorf("secret %s is owned by uid %d, want %d", name, uid, want)
			}
		}
	}
	if seen != len(owner) {
		t.Errorf("secrets on the server:\n%s\nwant at least %v", stat, owner)
	}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// psSampler records every process's command line, several times a second.
type psSampler struct {
	mu   sync.Mutex
	seen map[string]bool
	n    atomic.Int64
}

func (s *psSampler) start() (stop func() string) {
	s.seen = map[string]bool{}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			out, _ := exec.Command("ps", "-eo", "args", "--no-headers").Output()
			s.mu.Lock()
			for _, l := range strings.Split(string(out), "\n") {
				s.seen[l] = true
			}
			s.mu.Unlock()
			s.n.Add(1)
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return func() string {
		close(done)
		<-finished
		s.mu.Lock()
		defer s.mu.Unlock()
		var b strings.Builder
		for l := range s.seen {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		return b.String()
	}
}

// browserUpdate clicks Update on the running platform's page in headless
// Chromium (the same pipeline as a deploy), confirms, watches the job
// page's live log reach success, and checks the endpoints panel.
func browserUpdate(t *testing.T, c *httpapi.Client, p *myt.Platform) *myt.Job {
	t.Helper()
	chromiumPath(t)
	b := newBrowser(t, c.BaseURL)
	b.signIn("ada", "correct horse battery")
	b.waitPath("/")
	page := fmt.Sprintf("/platforms/%d", p.ID)
	b.open(page)
	b.click(`a[href="` + page + `/update"]`)
	b.waitPath(page + "/update")
	b.screenshot("40-real-update-confirm")
	b.submit(`main form button[type=submit]`)
	b.waitPath("/jobs/")
	b.waitFor("the live log", `document.querySelector('#job').classList.contains('live')`)
	b.screenshot("41-real-update-running")
	deadline := time.Now().Add(10 * time.Minute)
	for eval[string](b, `document.querySelector('#job').dataset.jobState`) != "succeeded" {
		if st := eval[string](b, `document.querySelector('#job').dataset.jobState`); st == "failed" || st == "cancelled" || time.Now().After(deadline) {
			t.Fatalf("the job page shows %s:\n%s", st, b.text("#job-log"))
		}
		time.Sleep(time.Second)
	}
	b.see("SUCCEEDED")
	b.screenshot("42-real-update-succeeded")
	var id int64
	if _, err := fmt.Sscanf(eval[string](b, "location.pathname"), "/jobs/%d", &id); err != nil {
		t.Fatal(err)
	}
	b.open(page)
	b.waitFor("the endpoints panel", `document.querySelector('#endpoints') !== null`)
	running, err := c.Platform(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if running.Endpoints == nil || !strings.Contains(b.text("#endpoints"), running.Endpoints.MQTTS) {
		t.Errorf("endpoints panel %q, want %+v", b.text("#endpoints"), running.Endpoints)
	}
	b.screenshot("43-real-platform-running")
	j, err := c.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
