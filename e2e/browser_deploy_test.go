package e2e

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

// The deploy pages in a real browser: deploy an SSH platform whose server
// refuses connections (the job waits for SSH), follow the job live and
// cancel it; then, with a deploy recorded in the database as a job would
// (no cloud or server is reachable from here), the endpoints of a running
// platform, the password reveal, the update and destroy confirmations,
// and a cloud plan waiting for approval. Every page is screenshotted in
// desktop and narrow widths and checked with axe-core.

// serverStore opens the database of a running `myt serve`, with its server
// key, to record what a real deploy would have.
func serverStore(t *testing.T, srv *server) (*sqlite.DB, *sqlite.Services) {
	t.Helper()
	key, err := vault.ReadKeyFile(filepath.Join(srv.Data, vault.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(srv.Data, sqlite.DBFile), sqlite.Options{ServerKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, sqlite.NewServices(db)
}

// narrow screenshots the current page at a phone's width too.
func (b *browser) narrow(name string) {
	b.t.Helper()
	b.do("narrow viewport", chromedp.EmulateViewport(390, 844))
	b.do("reload", chromedp.Reload())
	b.waitFor("the page after a reload", "document.readyState === 'complete'")
	b.screenshot(name)
	b.do("wide viewport", chromedp.EmulateViewport(1280, 900))
}

// await evaluates a JavaScript promise of a number in the page.
func (b *browser) await(expr string) float64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// importDesign imports a YAML design through the import page and returns
// the platform's path.
func (b *browser) importDesign(doc string) string {
	b.t.Helper()
	b.open("/platforms/import")
	b.fill("#f-document", doc)
	b.submit(`main button[type=submit]`)
	b.waitFor("the platform page", `location.pathname.match(/^\/platforms\/\d+$/) !== null`)
	return eval[string](b, "location.pathname")
}

func TestBrowserDeploy(t *testing.T) {
	chromiumPath(t)
	// The runner refuses SSH deploys on a server without Ansible.
	_, err := exec.LookPath("ansible-playbook")
	testenv.Need(t, "ansible-playbook", err == nil, "apt-get install -y ansible-core")
	srv := startServer(t)
	b := newBrowser(t, srv.URL)

	b.open("/setup")
	b.fill("#f-username", adminName)
	b.fill("#f-password", adminPass)
	b.fill("#f-password2", adminPass)
	b.submit(`main button[type=submit]`)
	b.waitPath("/")
	b.see("Deploy it")
	if strings.Contains(b.text("main"), "coming in the next release") {
		t.Fatal("the dashboard still says deploying comes in a later release")
	}

	// An SSH server that refuses connections: the deploy waits for it.
	b.open("/credentials/new?kind=ssh")
	b.fill("#f-name", "barn-ssh")
	b.fill("#f-host", "127.0.0.1")
	b.fill("#f-port", "1")
	b.fill("#f-user", "root")
	b.submit(`main button[type=submit]`)
	b.see("Public key to install")
	barn := b.importDesign(`apiVersion: myt/v1
kind: Platform
metadata: {name: barn, description: Sensors in the barn}
spec:
  target: {provider: ssh, credentials: barn-ssh, adminCIDRs: ["203.0.113.0/24"], deviceCIDRs: ["198.51.100.0/24"]}
  database: {kind: mysql, fields: {temperature: float, door_open: bool}}
  broker: {mqtt: true, amqp: false, tls: true, plaintext: false}
`)
	b.see("Not deployed yet")
	b.click(`a[href="` + barn + `/deploy"]`)
	b.waitPath(barn + "/deploy")
	b.see("Deploy barn?")
	for _, want := range []string{"root@127.0.0.1:1", "MySQL", "8883", "198.51.100.0/24", "Grafana (HTTPS)", "203.0.113.0/24"} {
		b.see(want)
	}
	b.screenshot("22-deploy-confirm")
	b.narrow("22b-deploy-confirm-mobile")

	// Deploy: the job page follows the job live.
	b.submit(`main form button[type=submit]`)
	b.waitPath("/jobs/")
	b.see("The deploy job started")
	job := eval[string](b, "location.pathname")
	b.waitFor("the job running", `document.querySelector('#job').dataset.jobState === 'running'`)
	b.waitFor("the connect step in the log", `document.querySelector('#job-log').textContent.includes('==> connect')`)
	b.waitFor("the event stream", `document.querySelector('#job').classList.contains('live')`)
	b.waitFor("the connect step running", `document.querySelector('.step-running') !== null && document.querySelector('.step-running').textContent.includes('Connect over SSH')`)
	b.screenshot("23-job-running")
	b.colorScheme("dark")
	b.screenshot("23b-job-running-dark")
	b.colorScheme("")
	// Cancel from another request: this page, not reloaded, sees the job
	// end through its event stream.
	eval[bool](b, "window.__mytNoReload = true")
	code := b.await(fmt.Sprintf(`fetch(%q, {method: 'POST', body: new URLSearchParams({csrf: document.querySelector('form[action$="/cancel"] input[name=csrf]').value})}).then(r => r.status)`, job+"/cancel"))
	if code != 200 {
		t.Fatalf("cancel: status %v", code)
	}
	b.waitFor("the job cancelled, live", `window.__mytNoReload === true && document.querySelector('#job').dataset.jobState === 'cancelled' && document.querySelector('#job-log').textContent.includes('CANCELLED') && !document.querySelector('#job').classList.contains('live')`)
	b.see("The job was cancelled")
	if eval[bool](b, `document.querySelector('form[action$="/cancel"]') !== null`) {
		t.Fatal("the cancelled job still offers Cancel")
	}
	b.screenshot("23c-job-cancelled")
	b.narrow("23d-job-cancelled-mobile")

	// The platform page lists the job; so does the history.
	b.open(barn)
	b.waitFor("the job in the history", fmt.Sprintf(`document.querySelector('a[href=%q]') !== null`, job))
	b.open(barn + "/jobs")
	b.see("Jobs of barn")
	b.screenshot("24-jobs")

	// What a successful deploy records (no server answers here): status,
	// revision, endpoints, the CA and the passwords.
	db, svc := serverStore(t, srv)
	a, err := svc.Users.Authenticate(context.Background(), adminName, adminPass)
	if err != nil {
		t.Fatal(err)
	}
	ctx := myt.NewContextWithAuth(context.Background(), a)
	name := "barn"
	ps, err := svc.Platforms.FindPlatforms(ctx, myt.PlatformFilter{Name: &name})
	if err != nil || len(ps) != 1 {
		t.Fatalf("platform barn: %v %v", ps, err)
	}
	jobs := sqlite.NewJobStore(db)
	rev := 1
	if err := jobs.SetPlatformDeployment(ctx, ps[0].ID, myt.PlatformDeployment{Status: myt.StatusRunning, DeployedRevision: &rev, SetEndpoints: true, Endpoints: &myt.Endpoints{
		Address: "198.51.100.20", MQTTS: "mqtts://198.51.100.20:8883", Grafana: "https://198.51.100.20:3000", DeviceUser: "myt-device", TopicPrefix: "myt"}}); err != nil {
		t.Fatal(err)
	}
	const grafanaPW, devicePW = "Grafana-e2e-pass-1", "Device-e2e-pass-2"
	for k, v := range map[string]string{myt.SecretGrafanaAdmin: grafanaPW, myt.SecretDevice: devicePW, "tls/ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"} {
		if err := svc.Secrets.Put(ctx, ps[0].ID, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	// Half an hour of polls in the history, as the monitor would have
	// recorded them (it does not poll ssh platforms yet), with three
	// minutes missed: the charts draw them, with a gap.
	mon := sqlite.NewMonitorStore(db)
	polled := time.Now()
	var in, stored, dead float64
	for i := range 60 {
		if i >= 30 && i < 36 {
			continue
		}
		rate := 8 + 4*math.Sin(float64(i)/6)
		in, stored, dead = in+rate*30, stored+(rate-0.5)*30, dead+float64(i%7)
		if err := mon.Append(ctx, ps[0].ID, polled.Add(time.Duration(i-60)*30*time.Second), []monitor.Sample{
			{Metric: monitor.MetricMessagesIn, Kind: monitor.Counter, Value: in},
			{Metric: monitor.MetricStored, Kind: monitor.Counter, Value: stored},
			{Metric: monitor.MetricDeadLettered, Kind: monitor.Counter, Value: dead},
			{Metric: monitor.MetricHandlerErrors, Kind: monitor.Counter, Value: dead},
			{Metric: monitor.MetricQueueDepth, Kind: monitor.Gauge, Value: float64(20 + 15*math.Cos(float64(i)/5))},
			{Metric: monitor.MetricWorkerLag, Kind: monitor.Gauge, Value: 0.2 + 0.1*math.Cos(float64(i)/5)},
			{Metric: monitor.MetricDiskUsed, Kind: monitor.Gauge, Value: 0.41 + float64(i)*0.0004},
		}); err != nil {
			t.Fatal(err)
		}
	}
	b.open(barn)
	b.waitFor("the endpoints", `document.querySelector('#endpoints code#ep-mqtts') !== null`)
	// Every chart is an SVG line, split where polls were missed.
	b.waitFor("the charts", `document.querySelectorAll('#metrics figure svg').length === 7 && document.querySelectorAll('#chart-messages-in-total svg polyline').length === 2`)
	if l := eval[string](b, `document.querySelector('#chart-messages-in-total svg').getAttribute('aria-label')`); !regexp.MustCompile(`^Messages in, last 1 hour: now [0-9.]+/s, between 0/s and [0-9.]+/s\.$`).MatchString(l) {
		t.Fatalf("messages in chart's label: %q", l)
	}
	// The monitor does not poll this ssh platform (its deploy was faked,
	// so no monitor key was installed; nor before its next re-list, as it
	// was set running behind its back), and says why.
	b.waitFor("the health", `document.querySelector('#health [data-testid=health]').textContent.endsWith('not monitored') && /not polling this platform yet|it has no monitor key/.test(document.querySelector('#health').textContent)`)
	b.see("mqtts://198.51.100.20:8883")
	b.see("mosquitto_pub -h 198.51.100.20 -p 8883 --cafile ca.crt")
	b.see("myt/sensor-1/data")
	if h := b.html(); strings.Contains(h, grafanaPW) || strings.Contains(h, devicePW) {
		t.Fatal("a password is in the running platform's page before a reveal")
	}
	if code := b.await(fmt.Sprintf(`fetch(%q).then(r => r.status)`, barn+"/ca.crt")); code != 200 {
		t.Fatalf("ca.crt: %v", code)
	}
	b.screenshot("25-platform-running")
	b.narrow("25b-platform-running-mobile")
	b.colorScheme("dark")
	b.screenshot("25c-platform-running-dark")
	b.colorScheme("")
	b.submit(`form[action$="/reveal"] button`)
	b.waitFor("the passwords", fmt.Sprintf(`document.querySelector('[data-testid=grafana-password]').textContent === %q && document.querySelector('#qs-shell').textContent.includes(%q)`, grafanaPW, devicePW))
	b.screenshot("25d-platform-revealed")
	b.open(barn)
	if h := b.html(); strings.Contains(h, grafanaPW) || strings.Contains(h, devicePW) {
		t.Fatal("a password is still shown after the reveal page was left")
	}

	// Update and destroy ask first.
	b.click(`a[href="` + barn + `/update"]`)
	b.waitPath(barn + "/update")
	b.see("Update barn?")
	b.screenshot("26-update-confirm")
	b.open(barn + "/destroy")
	b.see("The data is kept.")
	b.waitFor("the name input hidden until the box is ticked", `document.querySelector('#f-confirm').offsetParent === null`)
	b.screenshot("27-destroy-confirm")
	b.click(`input[name=delete_data]`)
	b.waitFor("the name input", `document.querySelector('#f-confirm').offsetParent !== null`)
	b.fill("#f-confirm", "not barn")
	b.submit(`main form button[type=submit]`)
	b.waitFor("the name error", `document.querySelector('#f-confirm').getAttribute('aria-invalid') === 'true'`)
	b.see("Nothing was destroyed")
	b.screenshot("27b-destroy-confirm-error")
	b.narrow("27c-destroy-confirm-mobile")

	// A cloud plan waiting for approval, one that destroys the data.
	b.open("/credentials/new?kind=aws")
	b.fill("#f-name", "my-aws")
	b.fill("#f-access_key_id", awsKeyID)
	b.fill("#f-secret_access_key", awsSecret)
	b.submit(`main button[type=submit]`)
	b.see("The credential was saved")
	orchard := b.importDesign(`apiVersion: myt/v1
kind: Platform
metadata: {name: orchard}
spec:
  target: {provider: aws, credentials: my-aws, region: eu-west-1, size: small, adminCIDRs: ["203.0.113.7/32"], deviceCIDRs: ["0.0.0.0/0"], dataVolumeGB: 20}
  database: {kind: timescaledb, fields: {temperature: float}}
`)
	b.open(orchard + "/deploy")
	b.see("eu-west-1")
	b.see("changes nothing in your account until you approve the plan")
	b.screenshot("28-deploy-confirm-aws")
	name = "orchard"
	ps, err = svc.Platforms.FindPlatforms(ctx, myt.PlatformFilter{Name: &name})
	if err != nil || len(ps) != 1 {
		t.Fatalf("platform orchard: %v %v", ps, err)
	}
	now := time.Now()
	j := &myt.Job{PlatformID: ps[0].ID, Platform: "orchard", UserID: a.User.ID, Kind: myt.JobUpdate, State: myt.JobQueued, Revision: 1, Design: ps[0].Design, StartedBy: adminName,
		Steps: []myt.JobStep{
			{Name: "render", State: myt.StepSucceeded, Started: &now, Finished: &now},
			{Name: "init", State: myt.StepSucceeded, Started: &now, Finished: &now},
			{Name: "plan", State: myt.StepSucceeded, Detail: "1 to add, 0 to change, 2 to destroy; REPLACES the machine; DESTROYS the data volume", Started: &now, Finished: &now},
			{Name: "approval", State: myt.StepRunning, Started: &now},
			{Name: "apply", State: myt.StepPending}, {Name: "outputs", State: myt.StepPending}, {Name: "connect", State: myt.StepPending},
			{Name: "ansible", State: myt.StepPending}, {Name: "health", State: myt.StepPending}, {Name: "endpoints", State: myt.StepPending},
		}}
	if err := jobs.CreateJob(ctx, j, myt.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	j.State = myt.JobAwaitingApproval
	j.Plan = &myt.Plan{Add: 1, Destroy: 2, ReplacesHost: true, DestroysData: true, Changes: []myt.PlanChange{
		{Address: "aws_instance.host", Type: "aws_instance", Action: "replace", Host: true},
		{Address: "aws_ebs_volume.data", Type: "aws_ebs_volume", Action: "replace", Data: true},
		{Address: "aws_security_group_rule.admin[\"203.0.113.7/32-3000\"]", Type: "aws_security_group_rule", Action: "create"},
	}}
	if err := jobs.SaveJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.AppendLog(ctx, j.ID, "==> plan\n  replace  aws_instance.host\n  replace  aws_ebs_volume.data\nWaiting for approval: approve the plan above to apply it, or cancel the job.\n"); err != nil {
		t.Fatal(err)
	}
	b.open(fmt.Sprintf("/jobs/%d", j.ID))
	b.waitFor("the plan", `document.querySelector('#job').dataset.jobState === 'awaiting-approval' && document.querySelector('#plan .row-danger') !== null`)
	b.see("This plan destroys the data volume")
	b.see("Type orchard to approve deleting its data")
	b.screenshot("29-job-plan-approval")
	b.narrow("29b-job-plan-approval-mobile")

	// The dashboard shows each platform's status.
	b.open("/")
	b.waitFor("the badges", `document.querySelector('.platform-card .badge-running') !== null && document.querySelector('.platform-card .badge-deploying') !== null`)
	b.screenshot("30-dashboard-deployed")
}
