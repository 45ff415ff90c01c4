package web_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
	"github.com/myt-iot/myt/web"
)

// alertsEnv is the web UI with alerting wired as myt serve wires it.
type alertsEnv struct {
	*env
	store *sqlite.AlertStore
}

func newAlertsEnv(t *testing.T) *alertsEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	tools := deploy.Tools{}
	bin := t.TempDir()
	for _, f := range []struct {
		name, script string
		path         *string
	}{{"docker", fakeDocker, &tools.Docker}, {"tofu", fakeTofu, &tools.Tofu}, {"ansible-playbook", fakeAnsible, &tools.Ansible}} {
		*f.path = filepath.Join(bin, f.name)
		if err := os.WriteFile(*f.path, []byte(f.script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runner, err := deploy.New(ctx, deploy.Config{Jobs: sqlite.NewJobStore(db), States: sqlite.NewStateStore(db), Secrets: svc.Secrets,
		Platforms: svc.Platforms, Credentials: svc.Credentials, Code: sqlite.NewCodeStore(db), Tools: tools, DataDir: t.TempDir(), SSHTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	store := sqlite.NewAlertStore(db)
	h, err := web.New(web.Config{
		Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin,
		Jobs: runner, Connections: runner, Code: runner, Logger: slog.New(slog.DiscardHandler),
		Login:  &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 4, Wait: 10 * time.Second},
		Alerts: &alert.Service{Store: store, Platforms: svc.Platforms, Engine: &alert.Engine{Store: store, Timeout: 5 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &alertsEnv{env: &env{t: t, srv: srv, db: db, svc: svc}, store: store}
}

// platform creates a local platform of the signed-in user name.
func (e *alertsEnv) platform(name, pw, platform string) *myt.Platform {
	e.t.Helper()
	d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: " + platform + "}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n"))
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.svc.Platforms.CreatePlatform(e.ctxOf(e.t, name, pw), d)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// signedReceiver is a webhook endpoint checking the HMAC signature.
type signedReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []alert.Payload
	failing bool
}

func newSignedReceiver(t *testing.T, secret string) *signedReceiver {
	h := &signedReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get(alert.SignatureHeader) != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if h.failing {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var p alert.Payload
		json.Unmarshal(body, &p)
		h.got = append(h.got, p)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *signedReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// TestAlertsPageChannels: from the platform page to its alerts page, a
// webhook is added (its secret and URL token never shown again), its
// "Send test" reaches a real receiver signed and shows the outcome, a
// failing receiver's answer is shown, bad input is marked next to its
// input, an email channel is added, and a channel is deleted.
func TestAlertsPageChannels(t *testing.T) {
	e := newAlertsEnv(t)
	ada := e.setup()
	p := e.platform("ada", adminPW, "shed")
	base := "/platforms/" + itoa(p.ID) + "/alerts"
	if r := ada.get("/platforms/" + itoa(p.ID)); !strings.Contains(r.body, `href="`+base+`"`) {
		t.Errorf("the platform page does not link its alerts page")
	}
	r := ada.get(base)
	if r.status != 200 || !strings.Contains(r.body, "No channels yet") || strings.Count(r.body, `class="alert-rule"`) != len(alert.Defaults()) {
		t.Fatalf("alerts page: %d\n%s", r.status, r.body)
	}
	if !strings.Contains(r.body, "This server has no SMTP relay") {
		t.Errorf("no word that email cannot be sent without a relay")
	}

	const secret, token = "whsec-web-test-5151", "tok-web-8080"
	recv := newSignedReceiver(t, secret)
	r = ada.post(base+"/channels", url.Values{"kind": {"webhook"}, "name": {"ops"}, "url": {recv.srv.URL + "/in?token=" + token}, "secret": {secret}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, base+"?ok=channel-added") {
		t.Fatalf("add webhook: %d %s\n%s", r.status, r.location, r.body)
	}
	r = ada.get(r.location)
	if !strings.Contains(r.body, "The channel was added") || !strings.Contains(r.body, strings.TrimPrefix(recv.srv.URL, "http://")) || !strings.Contains(r.body, ">signed<") {
		t.Errorf("after adding: the page lacks the notice, the host or 'signed'")
	}
	if strings.Contains(r.body, secret) || strings.Contains(r.body, token) {
		t.Errorf("the page shows the webhook's secret or URL token")
	}
	chans, _ := e.store.Channels(context.Background(), p.ID)
	if len(chans) != 1 {
		t.Fatalf("channels %+v", chans)
	}
	test := fmt.Sprintf("%s/channels/%d/test", base, chans[0].ID)
	r = ada.post(test, nil)
	if r.status != 200 || !strings.Contains(r.body, "The test notification to “ops” was delivered") || recv.count() != 1 {
		t.Errorf("send test: %d, receiver got %d\n%s", r.status, recv.count(), r.body)
	}
	recv.mu.Lock()
	recv.failing = true
	recv.mu.Unlock()
	r = ada.post(test, nil)
	if !strings.Contains(r.body, "The test to “ops” was not delivered") || !strings.Contains(r.body, "HTTP 503") || strings.Contains(r.body, token) {
		t.Errorf("a failing receiver's test:\n%s", r.body)
	}

	// Bad input: marked next to the input, the secret not sent back.
	r = ada.post(base+"/channels", url.Values{"kind": {"webhook"}, "name": {"x"}, "url": {"ftp://example.com"}, "secret": {"typed-secret-99"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-url-err"`) || !strings.Contains(r.body, `aria-invalid="true"`) || strings.Contains(r.body, "typed-secret-99") {
		t.Errorf("bad URL: %d\n%s", r.status, r.body)
	}
	r = ada.post(base+"/channels", url.Values{"kind": {"email"}, "email_name": {"on-call"}, "to": {"ops@example.com\nnot an address"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-to-err"`) || !strings.Contains(r.body, "not an address") {
		t.Errorf("bad address: %d\n%s", r.status, r.body)
	}
	r = ada.post(base+"/channels", url.Values{"kind": {"email"}, "email_name": {"on-call"}, "to": {"ops@example.com\r\nlead@example.com"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("add email: %d\n%s", r.status, r.body)
	}
	if r = ada.get(base); !strings.Contains(r.body, "ops@example.com, lead@example.com") {
		t.Errorf("the email channel's addresses are not listed")
	}
	r = ada.post(fmt.Sprintf("%s/channels/%d/delete", base, chans[0].ID), nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", r.status, r.body)
	}
	if cs, _ := e.store.Channels(context.Background(), p.ID); len(cs) != 1 || cs[0].Name != "on-call" {
		t.Errorf("after delete: %+v", cs)
	}
	// A reload of a POST-only action goes back to the page.
	if r := ada.get(test); r.status != http.StatusSeeOther || r.location != base {
		t.Errorf("GET %s: %d → %s", test, r.status, r.location)
	}
}

// TestAlertsPageRules: a rule is disabled with a new threshold and
// durations; a bad duration is marked next to its input and saves
// nothing.
func TestAlertsPageRules(t *testing.T) {
	e := newAlertsEnv(t)
	ada := e.setup()
	p := e.platform("ada", adminPW, "shed")
	base := "/platforms/" + itoa(p.ID) + "/alerts"
	ada.get(base)
	rules, _ := e.store.Rules(context.Background(), p.ID)
	rule := rules[1] // queue-depth
	action := fmt.Sprintf("%s/rules/%d", base, rule.ID)
	if r := ada.post(action, url.Values{"threshold": {"500"}, "for": {"10m"}, "clear_for": {"90s"}}); r.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.status, r.body)
	}
	rules, _ = e.store.Rules(context.Background(), p.ID)
	if g := rules[1]; g.Enabled || g.Threshold != 500 || g.For != 10*time.Minute || g.ClearFor != 90*time.Second {
		t.Errorf("saved rule %+v, want disabled, 500, 10m, 90s", g)
	}
	r := ada.get(base + "?ok=rule-saved")
	if !strings.Contains(r.body, "The rule was saved") || !strings.Contains(r.body, `value="10m"`) || !strings.Contains(r.body, ">disabled<") {
		t.Errorf("the page after saving lacks the notice, the new duration or the disabled badge")
	}
	r = ada.post(action, url.Values{"enabled": {"1"}, "threshold": {"7"}, "for": {"soon"}, "clear_for": {"1m"}})
	id := fmt.Sprintf("f-rule-%d-for", rule.ID)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="`+id+`-err"`) || !strings.Contains(r.body, `value="soon"`) {
		t.Errorf("bad duration: %d\n%s", r.status, r.body)
	}
	if rules, _ = e.store.Rules(context.Background(), p.ID); rules[1].Enabled || rules[1].Threshold != 500 {
		t.Errorf("a refused form changed the rule: %+v", rules[1])
	}
}

// TestAlertsPageHistory: fired and resolved events with each channel's
// delivery, newest first, 25 a page with a link to the older ones.
func TestAlertsPageHistory(t *testing.T) {
	e := newAlertsEnv(t)
	ada := e.setup()
	p := e.platform("ada", adminPW, "shed")
	ctx := context.Background()
	if err := e.store.EnsureDefaults(ctx, p.ID, alert.Defaults()); err != nil {
		t.Fatal(err)
	}
	rules, _ := e.store.Rules(ctx, p.ID)
	ch, err := e.store.AddChannel(ctx, p.ID, "ops", alert.Webhook{URL: "https://hooks.example.com/x"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var last *alert.Event
	for i := range 30 {
		last = &alert.Event{PlatformID: p.ID, RuleID: rules[0].ID, Rule: "component-down", Kind: alert.KindDown,
			State: []string{alert.Fired, alert.Resolved}[i%2], Value: float64(1 - i%2), At: at.Add(time.Duration(i) * time.Minute), Detail: fmt.Sprintf("event %d", i)}
		if err := e.store.SaveState(ctx, rules[0], last); err != nil {
			t.Fatal(err)
		}
	}
	e.store.RecordDelivery(ctx, last.ID, alert.Delivery{ChannelID: ch.ID, Status: alert.Failed, Attempts: 3, Error: "the receiver answered HTTP 503", At: at})
	r := ada.get("/platforms/" + itoa(p.ID) + "/alerts")
	if n := strings.Count(r.body, `data-testid="event"`); n != 25 {
		t.Errorf("%d events on the first page, want 25", n)
	}
	if !strings.Contains(r.body, "event 29") || strings.Contains(r.body, "event 4<") || !strings.Contains(r.body, "failed") ||
		!strings.Contains(r.body, "after 3 tries: the receiver answered HTTP 503") || !strings.Contains(r.body, ">resolved<") || !strings.Contains(r.body, ">fired<") {
		t.Errorf("first page of the history:\n%s", r.body)
	}
	older := fmt.Sprintf(`href="/platforms/%d/alerts?before=`, p.ID)
	i := strings.Index(r.body, older)
	if i < 0 {
		t.Fatal("no link to the older events")
	}
	next := r.body[i+len(`href="`):]
	next = next[:strings.Index(next, `"`)]
	r = ada.get(strings.ReplaceAll(next, "&amp;", "&"))
	if n := strings.Count(r.body, `data-testid="event"`); n != 5 || !strings.Contains(r.body, "event 0<") || strings.Contains(r.body, "event 5<") {
		t.Errorf("second page: %d events\n%s", n, r.body)
	}
}

// TestAlertsPageIsTheOwners: another user gets 404 for the page and
// every form, and nothing changes; a form without the anti-forgery token
// is refused.
func TestAlertsPageIsTheOwners(t *testing.T) {
	e := newAlertsEnv(t)
	ada := e.setup()
	p := e.platform("ada", adminPW, "shed")
	bob := e.member(ada, "bob", "bob password 1")
	ctx := context.Background()
	ch, err := e.store.AddChannel(ctx, p.ID, "ops", alert.Webhook{URL: "https://hooks.example.com/x"})
	if err != nil {
		t.Fatal(err)
	}
	e.store.EnsureDefaults(ctx, p.ID, alert.Defaults())
	rules, _ := e.store.Rules(ctx, p.ID)
	base := "/platforms/" + itoa(p.ID) + "/alerts"
	if r := bob.get(base); r.status != http.StatusNotFound {
		t.Errorf("bob's GET of ada's alerts: %d, want 404", r.status)
	}
	bob.get("/")
	for _, path := range []string{base + "/channels", fmt.Sprintf("%s/channels/%d/test", base, ch.ID), fmt.Sprintf("%s/channels/%d/delete", base, ch.ID), fmt.Sprintf("%s/rules/%d", base, rules[0].ID)} {
		form := url.Values{"kind": {"webhook"}, "name": {"x"}, "url": {"https://evil.example/x"}, "threshold": {"9"}, "for": {"1m"}, "clear_for": {"1m"}}
		if r := bob.post(path, form); r.status != http.StatusNotFound {
			t.Errorf("bob's POST %s: %d, want 404", path, r.status)
		}
		form.Set("csrf", "")
		if r := ada.post(path, form); r.status != http.StatusForbidden {
			t.Errorf("ada's POST %s without the token: %d, want 403", path, r.status)
		}
	}
	cs, _ := e.store.Channels(ctx, p.ID)
	rs, _ := e.store.Rules(ctx, p.ID)
	if len(cs) != 1 || cs[0].Name != "ops" || !rs[0].Enabled || rs[0].Threshold != 0 {
		t.Errorf("refused requests changed ada's alerts: %+v %+v", cs, rs[0])
	}
}

// TestAlertsPageNeedsAlerting: without alerting wired, the platform page
// has no link and the alerts page is 404.
func TestAlertsPageNeedsAlerting(t *testing.T) {
	e := newEnv(t, false)
	ada := e.setup()
	ada.addAWS("my-aws")
	if r := ada.post("/platforms/new", wizardForm("greenhouse")); r.status != http.StatusSeeOther {
		t.Fatalf("create: %d", r.status)
	}
	ps, _ := e.svc.Platforms.FindPlatforms(e.ctxOf(t, "ada", adminPW), myt.PlatformFilter{})
	if r := ada.get("/platforms/" + itoa(ps[0].ID)); strings.Contains(r.body, "/alerts") {
		t.Errorf("the platform page links alerts without alerting")
	}
	if r := ada.get("/platforms/" + itoa(ps[0].ID) + "/alerts"); r.status != http.StatusNotFound {
		t.Errorf("alerts page without alerting: %d, want 404", r.status)
	}
}
