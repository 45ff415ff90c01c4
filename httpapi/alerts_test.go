package httpapi_test

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
	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
)

// alertEnv is the API with alerting wired as myt serve wires it, on a
// real SQLite database.
type alertEnv struct {
	*env
	store *sqlite.AlertStore
}

func newAlertEnv(t *testing.T) *alertEnv {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	store := sqlite.NewAlertStore(db)
	guard := &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 4, Wait: 10 * time.Second}
	api := httpapi.New(httpapi.Config{Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin, Login: guard,
		Alerts: &alert.Service{Store: store, Platforms: svc.Platforms, Engine: &alert.Engine{Store: store, Timeout: 5 * time.Second}}})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &alertEnv{env: &env{t: t, srv: srv}, store: store}
}

// raw sends a request and returns the status and the body's bytes.
func (e *env) raw(method, path, token, body string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// hookReceiver is a webhook endpoint that checks X-MyT-Signature with
// its secret and keeps what it was sent.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []alert.Payload
	badSig int
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		h.mu.Lock()
		defer h.mu.Unlock()
		if !hmac.Equal([]byte(r.Header.Get(alert.SignatureHeader)), []byte(want)) {
			h.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p alert.Payload
		json.Unmarshal(body, &p)
		h.got = append(h.got, p)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) payloads() []alert.Payload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alert.Payload(nil), h.got...)
}

// TestAlertChannelSendTest: a webhook channel created through the API
// reaches a real receiver, signed with its secret, when tested; the
// secret and the URL's token are never in an answer; the channel can be
// renamed, re-keyed and deleted; an email channel lists its addresses.
func TestAlertChannelSendTest(t *testing.T) {
	e := newAlertEnv(t)
	ada, _, ids := e.setup()
	pid := itoa(ids["adaPlatform"])
	const secret, token = "whsec-api-test-4242", "tok-in-url-7171"
	recv := newHookReceiver(t, secret)

	status, body := e.raw("POST", "/api/v1/platforms/"+pid+"/alerts/channels", ada,
		`{"name":"ops","kind":"webhook","url":"`+recv.srv.URL+`/hook?token=`+token+`","secret":"`+secret+`"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var ch alert.Channel
	json.Unmarshal(body, &ch)
	if ch.ID == 0 || ch.Kind != alert.ChannelWebhook || !ch.Signed || ch.Host != strings.TrimPrefix(recv.srv.URL, "http://") {
		t.Errorf("created %s", body)
	}
	status, body = e.raw("POST", "/api/v1/platforms/"+pid+"/alerts/channels/"+itoa(ch.ID)+"/test", ada, "")
	var res httpapi.AlertTestResponse
	json.Unmarshal(body, &res)
	if status != 200 || !res.Delivered || res.Error != "" {
		t.Fatalf("send test: %d %s", status, body)
	}
	if got := recv.payloads(); len(got) != 1 || got[0].State != "test" || got[0].Platform != "greenhouse" || got[0].PlatformID != ids["adaPlatform"] {
		t.Errorf("receiver got %+v, want one signed test notification", got)
	}

	status, body = e.raw("POST", "/api/v1/platforms/"+pid+"/alerts/channels", ada, `{"name":"on-call","kind":"email","to":["ops@example.com","lead@example.com"]}`)
	if status != http.StatusCreated || !strings.Contains(string(body), `"to": [`) {
		t.Fatalf("create email channel: %d %s", status, body)
	}
	status, body = e.raw("GET", "/api/v1/platforms/"+pid+"/alerts/channels", ada, "")
	var list []alert.Channel
	if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list) != 2 || list[1].To[1] != "lead@example.com" {
		t.Fatalf("list: %d %s", status, body)
	}
	if strings.Contains(string(body), secret) || strings.Contains(string(body), token) {
		t.Errorf("the list shows the webhook's secret or URL token: %s", body)
	}

	// Re-keyed with another secret: the receiver refuses the signature,
	// and the test says so.
	status, body = e.raw("PATCH", "/api/v1/platforms/"+pid+"/alerts/channels/"+itoa(ch.ID), ada, `{"name":"pager","secret":"another-secret"}`)
	if status != 200 || !strings.Contains(string(body), `"name": "pager"`) || strings.Contains(string(body), "another-secret") {
		t.Fatalf("patch: %d %s", status, body)
	}
	_, body = e.raw("POST", "/api/v1/platforms/"+pid+"/alerts/channels/"+itoa(ch.ID)+"/test", ada, "")
	res = httpapi.AlertTestResponse{}
	json.Unmarshal(body, &res)
	if res.Delivered || !strings.Contains(res.Error, "HTTP 401") || strings.Contains(res.Error, token) {
		t.Errorf("test with the wrong secret: %s, want not delivered, HTTP 401, no token", body)
	}
	if status, body := e.raw("DELETE", "/api/v1/platforms/"+pid+"/alerts/channels/"+itoa(ch.ID), ada, ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, _ := e.raw("POST", "/api/v1/platforms/"+pid+"/alerts/channels/"+itoa(ch.ID)+"/test", ada, ""); status != 404 {
		t.Errorf("test of a deleted channel: %d, want 404", status)
	}
}

// TestAlertValidationNamesTheField: each bad input is a 400 whose
// fields name the input.
func TestAlertValidationNamesTheField(t *testing.T) {
	e := newAlertEnv(t)
	ada, _, ids := e.setup()
	base := "/api/v1/platforms/" + itoa(ids["adaPlatform"]) + "/alerts"
	_, body := e.raw("GET", base+"/rules", ada, "")
	var rules []httpapi.AlertRule
	if err := json.Unmarshal(body, &rules); err != nil || len(rules) != len(alert.Defaults()) {
		t.Fatalf("rules: %s", body)
	}
	rule := base + "/rules/" + itoa(rules[0].ID)
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", base + "/channels", `{"url":"https://hooks.example.com/x"}`, "name"},
		{"POST", base + "/channels", `{"name":"x","url":"ftp://hooks.example.com/x"}`, "url"},
		{"POST", base + "/channels", `{"name":"x"}`, "url"},
		{"POST", base + "/channels", `{"name":"x","kind":"sms"}`, "kind"},
		{"POST", base + "/channels", `{"name":"x","kind":"email","to":["not an address"]}`, "to"},
		{"POST", base + "/channels", `{"name":"x","kind":"email"}`, "to"},
		{"POST", base + "/channels", `{"name":"x","url":"https://h.example","colour":"red"}`, "colour"},
		{"PATCH", rule, `{"for":"soon"}`, "for"},
		{"PATCH", rule, `{"clearFor":"-1m"}`, "clearFor"},
		{"PATCH", rule, `{"threshold":-1}`, "threshold"},
		{"PATCH", rule, `{"enabled":"yes"}`, "enabled"},
		{"GET", base + "/events?limit=0", "", "limit"},
		{"GET", base + "/events?before=x", "", "before"},
	} {
		status, out := e.call(c.method, c.path, ada, c.body)
		fields, _ := out["error"].(map[string]any)["fields"].([]any)
		var named []string
		for _, f := range fields {
			named = append(named, f.(map[string]any)["field"].(string))
		}
		if status != 400 || len(named) == 0 || named[0] != c.field {
			t.Errorf("%s %s %s: %d, fields %v, want 400 naming %s", c.method, c.path, c.body, status, named, c.field)
		}
	}
}

// TestAlertRulesAndHistory: a rule is disabled and its threshold and
// durations changed; the history pages with next, each event with its
// deliveries.
func TestAlertRulesAndHistory(t *testing.T) {
	e := newAlertEnv(t)
	ada, _, ids := e.setup()
	pid := ids["adaPlatform"]
	base := "/api/v1/platforms/" + itoa(pid) + "/alerts"
	_, body := e.raw("GET", base+"/rules", ada, "")
	var rules []httpapi.AlertRule
	json.Unmarshal(body, &rules)
	if len(rules) == 0 || rules[0].Name != "component-down" || rules[0].For != "2m0s" || !rules[0].Enabled || rules[0].State != "ok" {
		t.Fatalf("rules %s", body)
	}
	status, body := e.raw("PATCH", base+"/rules/"+itoa(rules[0].ID), ada, `{"enabled":false,"threshold":1,"for":"5m","clearFor":"90s"}`)
	var r httpapi.AlertRule
	json.Unmarshal(body, &r)
	if status != 200 || r.Enabled || r.Threshold != 1 || r.For != "5m0s" || r.ClearFor != "1m30s" {
		t.Fatalf("patched rule: %d %s", status, body)
	}
	_, body = e.raw("GET", base+"/rules", ada, "")
	if !strings.Contains(string(body), `"enabled": false`) {
		t.Errorf("the change is not stored: %s", body)
	}

	// Three events, recorded as the engine does, one delivered.
	ctx := context.Background()
	all, _ := e.store.Rules(ctx, pid)
	ch, err := e.store.AddChannel(ctx, pid, "ops", alert.Webhook{URL: "https://hooks.example.com/x"})
	if err != nil {
		t.Fatal(err)
	}
	var last *alert.Event
	for i, st := range []string{alert.Fired, alert.Resolved, alert.Fired} {
		last = &alert.Event{PlatformID: pid, RuleID: all[1].ID, Rule: all[1].Name, Kind: all[1].Kind, State: st, Value: float64(i), At: time.Now()}
		if err := e.store.SaveState(ctx, all[1], last); err != nil {
			t.Fatal(err)
		}
	}
	e.store.RecordDelivery(ctx, last.ID, alert.Delivery{ChannelID: ch.ID, Status: alert.Failed, Attempts: 3, Error: "the receiver answered HTTP 503", At: time.Now()})
	status, body = e.raw("GET", base+"/events?limit=2", ada, "")
	var page httpapi.AlertEvents
	if err := json.Unmarshal(body, &page); status != 200 || err != nil || len(page.Events) != 2 || page.Next == 0 {
		t.Fatalf("page 1: %d %s", status, body)
	}
	if ev := page.Events[0]; ev.ID != last.ID || ev.State != alert.Fired || len(ev.Deliveries) != 1 || ev.Deliveries[0].Status != alert.Failed || ev.Deliveries[0].Attempts != 3 {
		t.Errorf("newest event %+v", ev)
	}
	_, body = e.raw("GET", base+"/events?limit=2&before="+itoa(page.Next), ada, "")
	page = httpapi.AlertEvents{}
	json.Unmarshal(body, &page)
	if len(page.Events) != 1 || page.Next != 0 || page.Events[0].State != alert.Fired || page.Events[0].Deliveries == nil {
		t.Errorf("page 2: %s, want the oldest event and no next", body)
	}
}

// TestAlertRoutesAreTheOwners: every alert route of another user's
// platform is 404, and so is a channel reached through another platform.
func TestAlertRoutesAreTheOwners(t *testing.T) {
	e := newAlertEnv(t)
	ada, bob, ids := e.setup()
	ctx := context.Background()
	ch, err := e.store.AddChannel(ctx, ids["adaPlatform"], "ops", alert.Webhook{URL: "https://hooks.example.com/x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.EnsureDefaults(ctx, ids["adaPlatform"], alert.Defaults()); err != nil {
		t.Fatal(err)
	}
	rules, _ := e.store.Rules(ctx, ids["adaPlatform"])
	n := 0
	for _, rt := range httpapi.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		if !strings.Contains(path, "/alerts/") {
			continue
		}
		path = strings.NewReplacer("{channel}", itoa(ch.ID), "{rule}", itoa(rules[0].ID)).Replace(path)
		body := `{"name":"x","url":"https://h.example/x","enabled":false}`
		if strings.HasPrefix(rt, "PATCH") && strings.Contains(rt, "channels") {
			body = `{"name":"x"}`
		} else if strings.HasPrefix(rt, "PATCH") {
			body = `{"enabled":false}`
		}
		for _, c := range []struct{ token, platform string }{{bob, itoa(ids["adaPlatform"])}, {ada, itoa(ids["bobPlatform"])}} {
			p := strings.ReplaceAll(path, "{id}", c.platform)
			if status, b := e.raw(method, p, c.token, body); status != 404 {
				t.Errorf("%s %s as another user: %d %s, want 404", method, p, status, b)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d requests made: the route table changed?", n)
	}
	if cs, _ := e.store.Channels(ctx, ids["adaPlatform"]); len(cs) != 1 || cs[0].Name != "ops" {
		t.Errorf("ada's channels changed: %+v", cs)
	}
	if rs, _ := e.store.Rules(ctx, ids["adaPlatform"]); !rs[0].Enabled {
		t.Errorf("ada's rule was disabled by another user")
	}
}

// TestAlertClient: the Go client's alert calls against the real server:
// create a channel, test it, read the rules and the (empty) history.
func TestAlertClient(t *testing.T) {
	e := newAlertEnv(t)
	ada, _, ids := e.setup()
	ctx := context.Background()
	cl := httpapi.NewClient(e.srv.URL, ada)
	pid := ids["adaPlatform"]
	const secret = "whsec-client-1234"
	recv := newHookReceiver(t, secret)
	ch, err := cl.CreateAlertChannel(ctx, pid, httpapi.AlertChannelRequest{Name: "ops", URL: recv.srv.URL, Secret: secret})
	if err != nil || ch.ID == 0 || ch.Kind != alert.ChannelWebhook {
		t.Fatalf("create: %+v %v", ch, err)
	}
	if res, err := cl.TestAlertChannel(ctx, pid, ch.ID); err != nil || !res.Delivered || len(recv.payloads()) != 1 {
		t.Errorf("test: %+v %v", res, err)
	}
	if cs, err := cl.AlertChannels(ctx, pid); err != nil || len(cs) != 1 {
		t.Errorf("channels: %+v %v", cs, err)
	}
	rules, err := cl.AlertRules(ctx, pid)
	if err != nil || len(rules) != len(alert.Defaults()) {
		t.Fatalf("rules: %+v %v", rules, err)
	}
	off := false
	if r, err := cl.UpdateAlertRule(ctx, pid, rules[0].ID, httpapi.AlertRulePatch{Enabled: &off}); err != nil || r.Enabled {
		t.Errorf("update rule: %+v %v", r, err)
	}
	if evs, err := cl.AlertEvents(ctx, pid, 0, 10); err != nil || len(evs.Events) != 0 || evs.Next != 0 {
		t.Errorf("events: %+v %v", evs, err)
	}
	if _, err := cl.CreateAlertChannel(ctx, pid, httpapi.AlertChannelRequest{Name: "x", Kind: alert.ChannelEmail}); myt.ErrorCode(err) != myt.EINVALID || myt.ErrorFields(err)[0].Field != "to" {
		t.Errorf("an email channel without addresses: %v, want invalid naming to", err)
	}
	if err := cl.DeleteAlertChannel(ctx, pid, ch.ID); err != nil {
		t.Errorf("delete: %v", err)
	}
}
