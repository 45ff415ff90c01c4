package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/pki"
)

// localDesign is a platform on this machine: it needs no credential, and
// the test runner's missing docker makes its deploy fail fast.
const localDesign = "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: shed}\n" +
	"spec: {target: {provider: local}, database: {kind: timescaledb, fields: {temperature: float, ok: bool}}, broker: {mqtt: true, amqp: true, tls: true, plaintext: false}}\n"

// importPlatform imports doc and returns the platform's page path.
func (c *client) importPlatform(doc string) string {
	c.e.t.Helper()
	c.get("/platforms/import")
	r := c.post("/platforms/import", url.Values{"document": {doc}})
	if r.status != http.StatusSeeOther {
		c.e.t.Fatalf("import: %d\n%s", r.status, r.body)
	}
	p, _, _ := strings.Cut(r.location, "?")
	return p
}

// platformID returns the id of the principal's platform name.
func (e *env) platformID(ctx context.Context, name string) int64 {
	e.t.Helper()
	ps, err := e.svc.Platforms.FindPlatforms(ctx, myt.PlatformFilter{Name: &name})
	if err != nil || len(ps) != 1 {
		e.t.Fatalf("platform %s: %v, %v", name, ps, err)
	}
	return ps[0].ID
}

// waitJob waits until job id has finished and returns it.
func (e *env) waitJob(ctx context.Context, id int64) *myt.Job {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := e.runner.FindJobByID(ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if !j.Active() {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %d still %s", id, j.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var jobLocRE = regexp.MustCompile(`^/jobs/(\d+)\?started=1$`)

// start posts a job's confirmation form and returns the job's id.
func (c *client) start(platform, kind string, form url.Values) int64 {
	c.e.t.Helper()
	if page := c.get(platform + "/" + kind); page.status != 200 {
		c.e.t.Fatalf("GET %s/%s: %d", platform, kind, page.status)
	}
	r := c.post(platform+"/"+kind, form)
	m := jobLocRE.FindStringSubmatch(r.location)
	if r.status != http.StatusSeeOther || m == nil {
		c.e.t.Fatalf("POST %s/%s: %d → %q\n%s", platform, kind, r.status, r.location, r.body)
	}
	id, _ := myt.ParseID(m[1])
	return id
}

// running records a successful deploy of the platform, as a job would:
// status, deployed revision, endpoints and the secrets a reveal shows.
func (e *env) running(ctx context.Context, id int64, secrets map[string]string) {
	e.t.Helper()
	rev := 1
	ep := &myt.Endpoints{Address: "192.0.2.7", MQTTS: "mqtts://192.0.2.7:8883", AMQPS: "amqps://192.0.2.7:5671/myt", Grafana: "https://192.0.2.7:3000",
		DeviceUser: "myt-device", TopicPrefix: "myt"}
	if err := e.jobs.SetPlatformDeployment(ctx, id, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &rev, Endpoints: ep, SetEndpoints: true}); err != nil {
		e.t.Fatal(err)
	}
	for k, v := range secrets {
		if err := e.svc.Secrets.Put(ctx, id, k, []byte(v)); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestDeployFromThePlatformPage(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	platform := c.importPlatform(localDesign)

	page := c.get(platform)
	if !strings.Contains(page.body, `href="`+platform+`/deploy"`) || strings.Contains(page.body, "disabled title=") {
		t.Fatalf("the platform page has no Deploy link:\n%s", page.body)
	}
	// The confirmation says what is created, where, and which ports open.
	confirm := c.get(platform + "/deploy")
	body := html.UnescapeString(confirm.body)
	for _, want := range []string{"Deploy shed?", "This machine", "the MyT server's own Docker engine", "TimescaleDB", "RabbitMQ", "Grafana",
		"8883", "MQTT over TLS", "5671", "every network this machine is on", "this machine only (127.0.0.1)", `action="` + platform + `/deploy"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the deploy confirmation lacks %q", want)
		}
	}
	if strings.Contains(body, "1883") {
		t.Error("the confirmation lists plain MQTT, which the design turns off")
	}

	id := c.start(platform, "deploy", nil)
	j := e.waitJob(ctx, id)
	if j.State != myt.JobFailed || j.Kind != myt.JobDeploy || !strings.Contains(j.Error, "docker") {
		t.Fatalf("job: %s %q", j.State, j.Error)
	}
	jp := c.get("/jobs/" + itoa(id))
	body = html.UnescapeString(jp.body)
	for _, want := range []string{`data-job-state="failed"`, `id="job-log"`, "==> render", j.Error, "Render the bundle", "Build the worker image",
		"The job failed.", `href="/jobs/` + itoa(id) + `/log.txt"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the job page lacks %q", want)
		}
	}
	if strings.Contains(jp.body, "data-events=") || strings.Contains(jp.body, `action="/jobs/`+itoa(id)+`/cancel"`) {
		t.Error("a finished job's page follows it live or offers Cancel")
	}
	// A step's state is on its row.
	if !regexp.MustCompile(`class="step step-succeeded"[\s\S]*Render the bundle`).MatchString(jp.body) || !strings.Contains(jp.body, `class="step step-failed"`) {
		t.Error("the steps do not show their states")
	}
	logTxt := c.get("/jobs/" + itoa(id) + "/log.txt")
	if logTxt.status != 200 || !strings.HasPrefix(logTxt.header.Get("Content-Type"), "text/plain") || !strings.Contains(logTxt.body, "==> render") {
		t.Errorf("log download: %d %q", logTxt.status, logTxt.header.Get("Content-Type"))
	}

	// The platform page lists the job and offers Deploy again.
	page = c.get(platform)
	for _, want := range []string{`href="/jobs/` + itoa(id) + `"`, "job-failed", `href="` + platform + `/deploy"`, "Latest job"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the platform page after a failed deploy lacks %q", want)
		}
	}
	if h := c.get(platform + "/jobs"); h.status != 200 || !strings.Contains(h.body, `href="/jobs/`+itoa(id)+`"`) {
		t.Errorf("job history: %d", h.status)
	}
	// The dashboard no longer promises deploys for later.
	if d := c.get("/"); strings.Contains(d.body, "coming in the next release") || !strings.Contains(d.body, "badge-failed") {
		t.Error("the dashboard still says deploying comes later, or lacks the failed badge")
	}
}

func TestAJobConflictIsShownNotAnError(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	platform := c.importPlatform(localDesign)
	pid := e.platformID(ctx, "shed")
	// A job that is still running (as if started by another request).
	p, _ := e.svc.Platforms.FindPlatformByID(ctx, pid)
	u := myt.UserFromContext(ctx)
	j := &myt.Job{PlatformID: pid, Platform: "shed", UserID: u.ID, Kind: myt.JobDeploy, State: myt.JobRunning, Revision: 1, Design: p.Design, StartedBy: "ada",
		Steps: []myt.JobStep{{Name: "render", State: myt.StepRunning}}}
	if err := e.jobs.CreateJob(ctx, j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	// The confirmation page says so already, and the platform page leads
	// to the running job instead of offering Deploy.
	if page := c.get(platform + "/deploy"); !strings.Contains(page.body, `href="/jobs/`+itoa(j.ID)+`"`) || !strings.Contains(page.body, "one job at a time") {
		t.Errorf("the confirmation page does not point at the running job")
	}
	if page := c.get(platform); !strings.Contains(page.body, `href="/jobs/`+itoa(j.ID)+`"`) || strings.Contains(page.body, `href="`+platform+`/deploy"`) {
		t.Errorf("the platform page of a deploying platform offers Deploy, or no link to its job")
	}
	r := c.post(platform+"/deploy", nil)
	if r.status != http.StatusConflict || !strings.Contains(r.body, "already has an active job") || !strings.Contains(r.body, "error-summary") ||
		!strings.Contains(r.body, `href="/jobs/`+itoa(j.ID)+`"`) {
		t.Fatalf("deploy while a job runs: %d, want 409 naming the job\n%s", r.status, r.body)
	}
	if js, _ := e.runner.FindJobs(ctx, myt.JobFilter{}); len(js) != 1 {
		t.Errorf("%d jobs after a refused start", len(js))
	}
	// Cancel and approve answer with the job page and the reason, not 500.
	c.get("/jobs/" + itoa(j.ID))
	if r := c.post("/jobs/"+itoa(j.ID)+"/approve", nil); r.status != http.StatusConflict || !strings.Contains(r.body, "not awaiting approval") || !strings.Contains(r.body, `id="job-log"`) {
		t.Errorf("approve a running job: %d", r.status)
	}
}

func TestJobPageShowsThePlanAndApproval(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	c.importPlatform(localDesign)
	pid := e.platformID(ctx, "shed")
	p, _ := e.svc.Platforms.FindPlatformByID(ctx, pid)
	u := myt.UserFromContext(ctx)
	j := &myt.Job{PlatformID: pid, Platform: "shed", UserID: u.ID, Kind: myt.JobUpdate, State: myt.JobQueued, Revision: 1, Design: p.Design, StartedBy: "ada",
		Steps: []myt.JobStep{{Name: "plan", State: myt.StepSucceeded, Detail: "1 to add, 0 to change, 2 to destroy"}, {Name: "approval", State: myt.StepRunning},
			{Name: "ansible", State: myt.StepPending, Done: 3, Total: 41, Detail: "task 3/41"}}}
	if err := e.jobs.CreateJob(ctx, j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	j.State = myt.JobAwaitingApproval
	j.Plan = &myt.Plan{Add: 1, Destroy: 2, ReplacesHost: true, DestroysData: true, Changes: []myt.PlanChange{
		{Address: "aws_instance.host", Type: "aws_instance", Action: "replace", Host: true},
		{Address: "aws_ebs_volume.data", Type: "aws_ebs_volume", Action: "delete", Data: true},
		{Address: "aws_security_group.this", Type: "aws_security_group", Action: "create"},
	}}
	if err := e.jobs.SaveJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	page := c.get("/jobs/" + itoa(j.ID))
	body := html.UnescapeString(page.body)
	for _, want := range []string{`data-job-state="awaiting-approval"`, `data-events="/jobs/` + itoa(j.ID) + `/events"`, "This plan destroys the data volume", "machine is replaced",
		`class="row-danger"`, "aws_ebs_volume.data", `action="/jobs/` + itoa(j.ID) + `/approve"`, `name="confirm"`, "Type shed to approve deleting its data",
		`<progress max="41" value="3"`, `action="/jobs/` + itoa(j.ID) + `/cancel"`, "The plan is ready", "data-reload"} {
		if !strings.Contains(body, want) {
			t.Errorf("the job page lacks %q", want)
		}
	}
	// Only the data volume's row is red.
	if n := strings.Count(page.body, `class="row-danger"`); n != 1 {
		t.Errorf("%d red rows, want 1", n)
	}
}

func TestJobsAreTheirOwnersOnly(t *testing.T) {
	e := newEnv(t, false)
	ada := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	platform := ada.importPlatform(localDesign)
	id := ada.start(platform, "deploy", nil)
	e.waitJob(ctx, id)
	job := "/jobs/" + itoa(id)

	bob := e.member(ada, "bob", "bob password 1")
	for _, p := range []string{job, job + "/events", job + "/log.txt", platform + "/jobs", platform + "/deploy", platform + "/update", platform + "/destroy", platform + "/ca.crt", "/jobs/999999"} {
		if r := bob.get(p); r.status != http.StatusNotFound || strings.Contains(r.body, "shed") || strings.Contains(r.body, "==> render") {
			t.Errorf("bob GET %s: %d, want 404 without ada's data", p, r.status)
		}
	}
	bob.get("/")
	for _, p := range []string{job + "/approve", job + "/cancel", platform + "/deploy", platform + "/destroy", platform + "/reveal"} {
		if r := bob.post(p, url.Values{"confirm": {"shed"}, "delete_data": {"1"}}); r.status != http.StatusNotFound {
			t.Errorf("bob POST %s: %d, want 404", p, r.status)
		}
	}
	if js, _ := e.runner.FindJobs(ctx, myt.JobFilter{}); len(js) != 1 {
		t.Errorf("ada has %d jobs after bob's attempts, want 1", len(js))
	}
}

func TestRunningPlatformEndpointsAndReveal(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	platform := c.importPlatform(localDesign)
	pid := e.platformID(ctx, "shed")
	const grafanaPW, devicePW = "grafana-Secret-4711", "device-Secret-0815"
	const caPEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
	e.running(ctx, pid, map[string]string{myt.SecretGrafanaAdmin: grafanaPW, myt.SecretDevice: devicePW, "tls/ca.crt": caPEM})

	page := c.get(platform)
	body := html.UnescapeString(page.body)
	for _, want := range []string{`id="endpoints"`, "mqtts://192.0.2.7:8883", "amqps://192.0.2.7:5671/myt", "https://192.0.2.7:3000", `href="` + platform + `/ca.crt"`,
		"mosquitto_pub -h 192.0.2.7 -p 8883 --cafile ca.crt", "-u myt-device", "-t myt/sensor-1/data", `"$MYT_DEVICE_PASSWORD"`,
		`client.tls_set(ca_certs="ca.crt")`, `client.connect("192.0.2.7", 8883)`, `"ok": True`, `action="` + platform + `/reveal"`, `href="` + platform + `/destroy"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the running platform's page lacks %q", want)
		}
	}
	if strings.Contains(body, grafanaPW) || strings.Contains(body, devicePW) {
		t.Fatal("a password is in the page before a reveal")
	}
	ca := c.get(platform + "/ca.crt")
	if ca.status != 200 || ca.body != caPEM || !strings.Contains(ca.header.Get("Content-Disposition"), "ca.crt") {
		t.Errorf("ca.crt: %d %q", ca.status, ca.body)
	}
	// The reveal is a POST with the anti-forgery token.
	if r := c.post(platform+"/reveal", url.Values{"csrf": {"forged"}}); r.status != http.StatusForbidden || strings.Contains(r.body, grafanaPW) {
		t.Errorf("reveal without the token: %d", r.status)
	}
	c.get(platform)
	r := c.post(platform+"/reveal", nil)
	body = html.UnescapeString(r.body)
	if r.status != 200 || !strings.Contains(body, `data-testid="grafana-password">`+grafanaPW) || !strings.Contains(body, `data-testid="device-password">`+devicePW) ||
		!strings.Contains(body, "-P "+devicePW) || !strings.Contains(body, `client.username_pw_set("myt-device", "`+devicePW+`")`) {
		t.Fatalf("reveal: %d\n%s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the revealed page may be cached: %q", cc)
	}
	// Once: the next GET hides them again.
	if page := c.get(platform); strings.Contains(page.body, grafanaPW) || strings.Contains(page.body, devicePW) {
		t.Error("a GET after the reveal shows a password")
	}
	if strings.Contains(e.log.String(), grafanaPW) || strings.Contains(e.log.String(), devicePW) {
		t.Error("a password is in the server log")
	}

	// A saved design newer than the one running: Update is the action.
	c.get(platform + "/edit")
	if r := c.post(platform+"/edit", url.Values{"document": {strings.Replace(localDesign, "ok: bool", "ok: bool, note: string", 1)}}); r.status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", r.status, r.body)
	}
	page = c.get(platform)
	if !strings.Contains(page.body, "Revision 2 is saved; revision 1 runs.") || !strings.Contains(page.body, `class="btn btn-primary" href="`+platform+`/update"`) {
		t.Errorf("the page of a platform with a newer design does not offer the update")
	}
	if u := c.get(platform + "/update"); !strings.Contains(u.body, "Revision 2 of the design replaces revision 1") {
		t.Errorf("the update confirmation does not say which revision it applies")
	}
}

// TestPlatformPageWarnsOfCertificateEnd: the platform page says until
// when the server certificate is valid, and within pki.RenewBefore of its
// end it warns and says how to renew it.
func TestPlatformPageWarnsOfCertificateEnd(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	platform := c.importPlatform(localDesign)
	pid := e.platformID(ctx, "shed")
	e.running(ctx, pid, nil)
	if body := c.get(platform).body; strings.Contains(body, `data-testid="cert-expiry"`) {
		t.Error("a certificate end is shown although none was recorded")
	}
	rev := 1
	for _, c2 := range []struct {
		left       time.Duration
		want, dont string
	}{
		{pki.RenewBefore + 48*time.Hour, "valid until ", "update the platform to renew it"},
		{pki.RenewBefore - 48*time.Hour, "update the platform to renew it", "valid until "},
	} {
		end := time.Now().Add(c2.left).UTC()
		ep := &myt.Endpoints{Address: "192.0.2.7", MQTTS: "mqtts://192.0.2.7:8883", DeviceUser: "myt-device", TopicPrefix: "myt", CertificateExpires: end}
		if err := e.jobs.SetPlatformDeployment(ctx, pid, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &rev, Endpoints: ep, SetEndpoints: true}); err != nil {
			t.Fatal(err)
		}
		body := html.UnescapeString(c.get(platform).body)
		i := strings.Index(body, `data-testid="cert-expiry"`)
		if i < 0 {
			t.Fatalf("%s left: no certificate line", c2.left)
		}
		line := body[i:min(len(body), i+400)]
		if !strings.Contains(line, end.Format("2006-01-02")) || !strings.Contains(line, c2.want) || strings.Contains(line, c2.dont) {
			t.Errorf("%s left: certificate line %q", c2.left, line)
		}
	}
}

func TestDestroyKeepsTheDataUnlessConfirmed(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	platform := c.importPlatform(localDesign)
	pid := e.platformID(ctx, "shed")
	e.running(ctx, pid, nil)

	page := c.get(platform + "/destroy")
	body := html.UnescapeString(page.body)
	for _, want := range []string{"Destroy shed?", "The data is kept.", "platforms/" + itoa(pid) + "/data", `name="delete_data"`, "Also delete the data", "Type shed to delete the data"} {
		if !strings.Contains(body, want) {
			t.Errorf("the destroy confirmation lacks %q", want)
		}
	}
	// Deleting the data needs the name typed.
	r := c.post(platform+"/destroy", url.Values{"delete_data": {"1"}, "confirm": {"she"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-confirm-err"`) || !strings.Contains(r.body, "checked") {
		t.Fatalf("destroy with data and a wrong name: %d\n%s", r.status, r.body)
	}
	if js, _ := e.runner.FindJobs(ctx, myt.JobFilter{}); len(js) != 0 {
		t.Fatalf("a job started without the name: %d", len(js))
	}
	// Without ticking the box, no name is needed and the data stays.
	id := c.start(platform, "destroy", nil)
	j := e.waitJob(ctx, id)
	if j.Kind != myt.JobDestroy || j.DeleteData || j.State != myt.JobSucceeded || !strings.Contains(j.Summary, "kept") {
		t.Fatalf("destroy: %s deleteData=%v %q %q", j.State, j.DeleteData, j.Error, j.Summary)
	}
	if p, _ := e.svc.Platforms.FindPlatformByID(ctx, pid); p.Status != myt.StatusDestroyed {
		t.Errorf("platform after destroy: %s", p.Status)
	}
	jp := c.get("/jobs/" + itoa(id))
	if !strings.Contains(jp.body, `data-job-state="succeeded"`) || !strings.Contains(html.UnescapeString(jp.body), j.Summary) {
		t.Errorf("the job page of the destroy lacks its state or summary")
	}
	// Destroyed: nothing to destroy, Delete is back.
	page = c.get(platform)
	if strings.Contains(page.body, `href="`+platform+`/destroy"`) || !strings.Contains(page.body, `href="`+platform+`/delete"`) {
		t.Error("a destroyed platform's page offers Destroy, or not Delete")
	}
	// With the box and the name, the job deletes the data.
	e.running(ctx, pid, nil)
	id = c.start(platform, "destroy", url.Values{"delete_data": {"1"}, "confirm": {"shed"}})
	if j := e.waitJob(ctx, id); !j.DeleteData || j.State != myt.JobSucceeded {
		t.Errorf("destroy with data: %s deleteData=%v", j.State, j.DeleteData)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name, id, data string
}

// readEvents reads the stream's events into ch until it ends.
func readEvents(body io.Reader, ch chan<- sseEvent) {
	defer close(ch)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// follow opens a job's event stream as c.
func (c *client) follow(ctx context.Context, path string, header http.Header) (<-chan sseEvent, *http.Response) {
	c.e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.e.srv.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	c.e.t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sseEvent, 100)
	go readEvents(resp.Body, ch)
	return ch, resp
}

// next returns the next event named name, failing after a while.
func next(t *testing.T, ch <-chan sseEvent, name string, within time.Duration) sseEvent {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before a %q event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within %s", name, within)
		}
	}
}

// TestJobEventsFollowAJob follows a job written straight to the store (no
// runner notifies about it, so the stream's poll must find the changes),
// on a server whose read and write timeouts are shorter than the stream.
func TestJobEventsFollowAJob(t *testing.T) {
	e := newEnv(t, false, func(s *http.Server) { s.ReadTimeout, s.WriteTimeout = time.Second, time.Second })
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	c.importPlatform(localDesign)
	pid := e.platformID(ctx, "shed")
	p, _ := e.svc.Platforms.FindPlatformByID(ctx, pid)
	u := myt.UserFromContext(ctx)
	j := &myt.Job{PlatformID: pid, Platform: "shed", UserID: u.ID, Kind: myt.JobDeploy, State: myt.JobRunning, Revision: 1, Design: p.Design, StartedBy: "ada",
		Steps: []myt.JobStep{{Name: "render", State: myt.StepRunning}}}
	if err := e.jobs.CreateJob(ctx, j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.AppendLog(ctx, j.ID, "first line\n"); err != nil {
		t.Fatal(err)
	}
	path := "/jobs/" + itoa(j.ID) + "/events"

	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, resp := c.follow(sctx, path+"?after=0", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if ev := next(t, ch, "log", 5*time.Second); ev.id != "1" || !strings.Contains(ev.data, `"text":"first line\n"`) {
		t.Errorf("first log event: %+v", ev)
	}
	if ev := next(t, ch, "job", 5*time.Second); !strings.Contains(ev.data, `"state":"running"`) || !strings.Contains(ev.data, `"steps"`) {
		t.Errorf("first job event: %+v", ev)
	}
	// Longer than the server's timeouts: the stream must live on.
	time.Sleep(1500 * time.Millisecond)
	if _, err := e.jobs.AppendLog(ctx, j.ID, "second line\n"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch, "log", 5*time.Second); ev.id != "2" || !strings.Contains(ev.data, "second line") {
		t.Errorf("second log event: %+v", ev)
	}
	// The job ends: its last state, then "end", then the stream closes.
	if _, err := e.jobs.AppendLog(ctx, j.ID, "SUCCEEDED: deployed\n"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	j.State, j.Finished, j.Summary = myt.JobSucceeded, &now, "Deployed."
	j.Steps[0].State = myt.StepSucceeded
	if err := e.jobs.SaveJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch, "log", 5*time.Second); !strings.Contains(ev.data, "SUCCEEDED") {
		t.Errorf("last log event: %+v", ev)
	}
	if ev := next(t, ch, "job", 5*time.Second); !strings.Contains(ev.data, `"state":"succeeded"`) || !strings.Contains(ev.data, "Deployed.") {
		t.Errorf("last job event: %+v", ev)
	}
	next(t, ch, "end", 5*time.Second)
	select {
	case ev, ok := <-ch:
		if ok {
			t.Errorf("an event after end: %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stayed open after the job ended")
	}

	// A browser that reconnects sends the last seq it saw: only newer
	// chunks come, then the end at once.
	ch, _ = c.follow(sctx, path, http.Header{"Last-Event-ID": {"2"}})
	ev := next(t, ch, "log", 5*time.Second)
	if ev.id != "3" {
		t.Errorf("after Last-Event-ID 2, the first chunk is %s", ev.id)
	}
	next(t, ch, "end", 5*time.Second)
}

// TestJobEventsOfARealJob follows a job the runner runs, from its start:
// the runner's notifications wake the stream.
func TestJobEventsOfARealJob(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	platform := c.importPlatform(localDesign)
	id := c.start(platform, "deploy", nil)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, _ := c.follow(sctx, "/jobs/"+itoa(id)+"/events?after=0", nil)
	var log strings.Builder
	var last sseEvent
	for ev := range ch {
		switch ev.name {
		case "log":
			var c myt.LogChunk
			if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
				t.Fatalf("log event %q: %v", ev.data, err)
			}
			log.WriteString(c.Text)
		case "job":
			last = ev
		}
		if ev.name == "end" {
			if !strings.Contains(ev.data, `"state":"failed"`) {
				t.Errorf("end: %s", ev.data)
			}
			break
		}
	}
	if sctx.Err() != nil {
		t.Fatal("the stream did not end")
	}
	if !strings.Contains(log.String(), "==> render") || !strings.Contains(log.String(), "FAILED") {
		t.Errorf("the stream's log lacks the job's lines: %s", log.String())
	}
	if !strings.Contains(last.data, `"state":"failed"`) || !strings.Contains(last.data, `"active":false`) {
		t.Errorf("last job event: %s", last.data)
	}
	// Without a session the stream is not served.
	anon := e.client()
	if r := anon.get("/jobs/" + itoa(id) + "/events"); r.status != http.StatusSeeOther || strings.Contains(r.body, "render") {
		t.Errorf("anonymous events: %d", r.status)
	}
}

// TestJobEventsEndOnShutdown: a graceful shutdown waits for responses in
// flight, so an open event stream must end when the server shuts down.
func TestJobEventsEndOnShutdown(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	ctx := e.ctxOf(t, "ada", adminPW)
	c.importPlatform(localDesign)
	pid := e.platformID(ctx, "shed")
	p, _ := e.svc.Platforms.FindPlatformByID(ctx, pid)
	u := myt.UserFromContext(ctx)
	j := &myt.Job{PlatformID: pid, Platform: "shed", UserID: u.ID, Kind: myt.JobDeploy, State: myt.JobRunning, Revision: 1, Design: p.Design, StartedBy: "ada"}
	if err := e.jobs.CreateJob(ctx, j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	ch, _ := c.follow(context.Background(), "/jobs/"+itoa(j.ID)+"/events", nil)
	next(t, ch, "job", 5*time.Second)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Config.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with an open event stream: %v", err)
	}
	for range ch {
	}
}
