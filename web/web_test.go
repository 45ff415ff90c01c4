package web_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
	"github.com/myt-iot/myt/web"
)

// env is a real MyT web UI on the real SQLite services, over HTTP.
type env struct {
	t   *testing.T
	srv *httptest.Server
	db  *sqlite.DB
	svc *sqlite.Services
	// jobs is the job store the runner uses; runner runs jobs with fake
	// tools that fail fast.
	jobs   *sqlite.JobStore
	runner *deploy.Runner
	log    *bytes.Buffer
	lim    *countingLimiter
	// finds counts FindCredentials calls (each decrypts every credential).
	finds *atomic.Int64
}

// countingCredentials counts FindCredentials calls of the real service.
type countingCredentials struct {
	myt.CredentialService
	finds *atomic.Int64
}

func (c countingCredentials) FindCredentials(ctx context.Context, f myt.CredentialFilter) ([]*myt.Credential, error) {
	c.finds.Add(1)
	return c.CredentialService.FindCredentials(ctx, f)
}

// countingLimiter allows max attempts per key (0: any number) and counts
// the attempts spent, less those refunded.
type countingLimiter struct {
	mu   sync.Mutex
	max  int
	seen map[string]int
}

func (l *countingLimiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max != 0 && l.seen[key] >= l.max {
		return false
	}
	l.seen[key]++
	return true
}

func (l *countingLimiter) Refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[key]--
}

// newEnv starts the UI; configure, if given, adjusts the HTTP server
// before it starts.
func newEnv(t *testing.T, secure bool, configure ...func(*http.Server)) *env {
	t.Helper()
	return newEnvWith(t, secure, nil, configure...)
}

// newEnvWith is newEnv with a monitor (nil: none).
func newEnvWith(t *testing.T, secure bool, mon web.Monitor, configure ...func(*http.Server)) *env {
	t.Helper()
	ctx := context.Background()
	logBuf := &bytes.Buffer{}
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logBuf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{
		ServerKey: vault.NewKey(), Logger: logger, Params: vault.Params{Time: 1, Memory: 1024, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	jobs := sqlite.NewJobStore(db)
	// Tools that pass the runner's checks and fail everything else: a
	// local deploy starts, and fails fast.
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
	runner, err := deploy.New(ctx, deploy.Config{
		Jobs: jobs, States: sqlite.NewStateStore(db), Secrets: svc.Secrets, Platforms: svc.Platforms, Credentials: svc.Credentials,
		Code:    sqlite.NewCodeStore(db),
		Tools:   tools,
		DataDir: t.TempDir(), Logger: logger, SSHTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	lim := &countingLimiter{seen: map[string]int{}}
	finds := &atomic.Int64{}
	h, err := web.New(web.Config{
		Users: svc.Users, Sessions: svc.Sessions, Credentials: countingCredentials{svc.Credentials, finds}, Platforms: svc.Platforms, Admin: svc.Admin,
		Jobs: runner, Connections: runner, Code: runner,
		Logger: logger, SecureCookies: secure,
		Login:   &throttle.Guard{Addr: lim, Account: lim, Slots: 4, Wait: 10 * time.Second, KnownFor: time.Hour},
		Monitor: mon,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	for _, f := range configure {
		f(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, db: db, svc: svc, jobs: jobs, runner: runner, log: logBuf, lim: lim, finds: finds}
}

// The fake tools answer the runner's version checks and fail every
// command.
const (
	fakeDocker = `#!/bin/sh
case "$*" in
"version --format {{.Server.Version}}") echo 24.0.7 ;;
"compose version --short") echo 2.21.0 ;;
*) echo "fake docker: cannot $1" >&2; exit 1 ;;
esac
`
	fakeTofu = `#!/bin/sh
[ "$1" = version ] && { echo "OpenTofu v1.8.0"; exit 0; }
echo "fake tofu: cannot $1" >&2; exit 1
`
	fakeAnsible = `#!/bin/sh
[ "$1" = --version ] && { echo "ansible-playbook [core 2.14.3]"; exit 0; }
echo "fake ansible-playbook: cannot run" >&2; exit 1
`
)

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// client is one browser: a cookie jar and the last page's CSRF token.
type client struct {
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type resp struct {
	status   int
	body     string
	location string
	header   http.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) do(req *http.Request) resp {
	c.e.t.Helper()
	r, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = html.UnescapeString(string(m[1]))
	}
	return resp{status: r.StatusCode, body: string(b), location: r.Header.Get("Location"), header: r.Header}
}

func (c *client) get(path string) resp {
	c.e.t.Helper()
	req, _ := http.NewRequest("GET", c.e.srv.URL+path, nil)
	return c.do(req)
}

// post sends a form with the last page's CSRF token (unless form sets one).
func (c *client) post(path string, form url.Values) resp {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest("POST", c.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

const adminPW = "admin password 1"

// setup runs first-run setup and returns the signed-in admin's client.
func (e *env) setup() *client {
	e.t.Helper()
	c := e.client()
	c.get("/setup")
	r := c.post("/setup", url.Values{"username": {"ada"}, "password": {adminPW}, "password2": {adminPW}})
	if r.status != http.StatusSeeOther || r.location != "/?welcome=1" {
		e.t.Fatalf("setup: %d %s\n%s", r.status, r.location, r.body)
	}
	return c
}

// member creates a non-admin user through the admin page and signs them in.
func (e *env) member(admin *client, name, pw string) *client {
	e.t.Helper()
	admin.get("/admin/users")
	if r := admin.post("/admin/users", url.Values{"username": {name}, "password": {pw}}); r.status != http.StatusSeeOther {
		e.t.Fatalf("create user %s: %d\n%s", name, r.status, r.body)
	}
	return e.login(name, pw)
}

func (e *env) login(name, pw string) *client {
	e.t.Helper()
	c := e.client()
	c.get("/login")
	r := c.post("/login", url.Values{"username": {name}, "password": {pw}})
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("login %s: %d\n%s", name, r.status, r.body)
	}
	c.get("/")
	return c
}

func TestFirstRunLeadsToSetupAndOnlyOnce(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	for _, p := range []string{"/", "/login", "/credentials", "/admin/users", "/platforms/1"} {
		if r := c.get(p); r.status != http.StatusSeeOther || r.location != "/setup" {
			t.Errorf("GET %s before setup: %d → %q, want 303 → /setup", p, r.status, r.location)
		}
	}
	r := c.get("/setup")
	if r.status != 200 || !strings.Contains(r.body, "Create administrator account") {
		t.Fatalf("setup page: %d", r.status)
	}
	// The anonymous form's token is a double-submit cookie: Secure here.
	if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, "myt_csrf=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "Secure") {
		t.Errorf("csrf cookie: %q", sc)
	}
	r = c.post("/setup", url.Values{"username": {"ada"}, "password": {adminPW}, "password2": {adminPW}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("setup: %d\n%s", r.status, r.body)
	}
	sc := r.header.Get("Set-Cookie")
	for _, want := range []string{"myt_session=", "HttpOnly", "SameSite=Lax", "Secure", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("session cookie %q lacks %s", sc, want)
		}
	}
	u, err := e.svc.Users.CountUsers(context.Background())
	if err != nil || u != 1 {
		t.Fatalf("users after setup: %d, %v", u, err)
	}
	if r := c.get("/"); r.status != 200 || !strings.Contains(r.body, "Design your first platform") {
		t.Fatalf("dashboard after setup: %d", r.status)
	}
	// A second setup is refused, from a fresh browser too.
	other := e.client()
	if r := other.get("/setup"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("GET /setup after setup: %d → %s", r.status, r.location)
	}
	other.get("/login")
	if r := other.post("/setup", url.Values{"username": {"mallory"}, "password": {adminPW}, "password2": {adminPW}}); r.status != http.StatusForbidden {
		t.Errorf("second setup: %d, want 403", r.status)
	}
	if n, _ := e.svc.Users.CountUsers(context.Background()); n != 1 {
		t.Errorf("users after a second setup: %d", n)
	}
}

func TestSetupShowsFieldErrorsInline(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	c.get("/setup")
	r := c.post("/setup", url.Values{"username": {"ada"}, "password": {"short"}, "password2": {"short"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("short password: %d", r.status)
	}
	if !strings.Contains(r.body, `id="f-password-err"`) || !strings.Contains(r.body, `aria-invalid="true"`) {
		t.Errorf("no inline error next to the password:\n%s", r.body)
	}
	if strings.Contains(r.body, `value="short"`) {
		t.Error("the password was echoed back into the form")
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/tokens")
	good := c.csrf
	for name, form := range map[string]url.Values{
		"missing": {"name": {"x"}, "ttl": {"30d"}, "csrf": {""}},
		"wrong":   {"name": {"x"}, "ttl": {"30d"}, "csrf": {"AAAA" + good[4:]}},
	} {
		if r := c.post("/tokens", form); r.status != http.StatusForbidden {
			t.Errorf("%s token: %d, want 403", name, r.status)
		}
	}
	// A cross-site browser POST is refused even with the right token.
	form := url.Values{"name": {"x"}, "ttl": {"30d"}, "csrf": {good}}
	req, _ := http.NewRequest("POST", e.srv.URL+"/tokens", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := c.do(req); r.status != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", r.status)
	}
	if ts, _ := e.svc.Sessions.FindSessions(e.ctxOf(t, "ada", adminPW), myt.SessionAPI); len(ts) != 0 {
		t.Errorf("%d tokens were created by refused requests", len(ts))
	}
	// The anonymous login form needs its cookie token too.
	anon := e.client()
	anon.get("/login")
	if r := anon.post("/login", url.Values{"username": {"ada"}, "password": {adminPW}, "csrf": {"forged"}}); r.status != http.StatusForbidden {
		t.Errorf("login with a forged token: %d", r.status)
	}
	// With the right token it works.
	if r := c.post("/tokens", form); r.status != 200 || !strings.Contains(r.body, `data-testid="new-token"`) {
		t.Errorf("token with the right csrf: %d", r.status)
	}
}

func (e *env) ctxOf(t *testing.T, name, pw string) context.Context {
	t.Helper()
	a, err := e.svc.Users.Authenticate(context.Background(), name, pw)
	if err != nil {
		t.Fatal(err)
	}
	return myt.NewContextWithAuth(context.Background(), a)
}

func TestLoginIsRateLimited(t *testing.T) {
	e := newEnv(t, false)
	e.setup()
	e.lim.max = 3
	c := e.client()
	c.get("/login")
	// Successful sign-ins spend nothing.
	for i := range 5 {
		other := e.client()
		other.get("/login")
		if r := other.post("/login", url.Values{"username": {"ada"}, "password": {adminPW}}); r.status != http.StatusSeeOther {
			t.Fatalf("successful sign-in %d: %d", i+1, r.status)
		}
	}
	if e.lim.seen["pair:ada@127.0.0.1"] != 0 || e.lim.seen["ip:127.0.0.1"] != 0 {
		t.Fatalf("successful sign-ins spent the budget: %v", e.lim.seen)
	}
	var last resp
	for range 4 {
		last = c.post("/login", url.Values{"username": {"ada"}, "password": {"wrong password"}})
	}
	if last.status != http.StatusTooManyRequests || !strings.Contains(last.body, "Too many sign-in attempts") || last.header.Get("Retry-After") != "60" {
		t.Fatalf("4th attempt: %d", last.status)
	}
	// Even the right password is refused while throttled.
	if r := c.post("/login", url.Values{"username": {"ada"}, "password": {adminPW}}); r.status != http.StatusTooManyRequests {
		t.Errorf("right password while throttled: %d", r.status)
	}
	// ada signed in from 127.0.0.1 before, so its failures spend the
	// address's budgets, not the account's.
	if e.lim.seen["pair:ada@127.0.0.1"] != 3 || e.lim.seen["ip:127.0.0.1"] != 3 || e.lim.seen["user:ada"] != 0 {
		t.Errorf("limiter keys seen: %v", e.lim.seen)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/")
	if r := c.post("/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if ss, _ := e.svc.Sessions.FindSessions(e.ctxOf(t, "ada", adminPW), myt.SessionWeb); len(ss) != 0 {
		t.Errorf("%d web sessions left after logout", len(ss))
	}
	if r := c.get("/credentials"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login") {
		t.Errorf("after logout: %d → %s", r.status, r.location)
	}
}

const (
	awsKey    = "AKIAIOSFODNN7EXAMPLE"
	awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func TestCredentialSecretsAreNeverEchoed(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/credentials/new?kind=aws")
	// Invalid: the form comes back with the error next to the input, and
	// without the secret.
	r := c.post("/credentials/new", url.Values{"kind": {"aws"}, "name": {"my-aws"}, "access_key_id": {"nope"}, "secret_access_key": {awsSecret}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-access_key_id-err"`) {
		t.Fatalf("invalid credential: %d\n%s", r.status, r.body)
	}
	if strings.Contains(html.UnescapeString(r.body), awsSecret) {
		t.Fatal("the secret was echoed into the form")
	}
	r = c.post("/credentials/new", url.Values{"kind": {"aws"}, "name": {"my-aws"}, "access_key_id": {awsKey}, "secret_access_key": {awsSecret}, "region": {"eu-west-1"}})
	if r.status != http.StatusSeeOther || strings.Contains(r.location, "EXAMPLEKEY") {
		t.Fatalf("create credential: %d → %s", r.status, r.location)
	}
	creds, err := e.svc.Credentials.FindCredentials(e.ctxOf(t, "ada", adminPW), myt.CredentialFilter{})
	if err != nil || len(creds) != 1 || creds[0].Masked["secret_access_key"] == "" {
		t.Fatalf("credentials: %v, %v", creds, err)
	}
	masked := creds[0].Masked["secret_access_key"]
	for _, p := range []string{r.location, "/credentials"} {
		page := c.get(p)
		if page.status != 200 || strings.Contains(html.UnescapeString(page.body), awsSecret) || !strings.Contains(page.body, awsKey) {
			t.Errorf("%s: status %d, secret shown %v", p, page.status, strings.Contains(page.body, awsSecret))
		}
		// Both pages list the public fields and the masked secret, labelled.
		body := html.UnescapeString(page.body)
		for _, want := range []string{masked, "eu-west-1", "Secret access key", "Access key ID"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s does not show %q", p, want)
			}
		}
	}
	if strings.Contains(e.log.String(), awsSecret) {
		t.Error("the secret is in the log")
	}
	// Duplicate names are reported on the name input.
	c.get("/credentials/new?kind=aws")
	r = c.post("/credentials/new", url.Values{"kind": {"aws"}, "name": {"my-aws"}, "access_key_id": {awsKey}, "secret_access_key": {awsSecret}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "already have a credential with this name") {
		t.Errorf("duplicate credential: %d", r.status)
	}
}

func TestSSHCredentialGeneratesAKeyPair(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/credentials/new?kind=ssh")
	r := c.post("/credentials/new", url.Values{"kind": {"ssh"}, "name": {"pi"}, "host": {"192.0.2.10"}, "user": {"root"}, "generate": {"1"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create ssh credential: %d\n%s", r.status, r.body)
	}
	page := c.get(r.location)
	if !strings.Contains(page.body, "ssh-ed25519 ") || !strings.Contains(page.body, "authorized_keys") {
		t.Fatalf("the public key to install is not shown:\n%s", page.body)
	}
	if strings.Contains(page.body, "PRIVATE KEY") {
		t.Fatal("the private key is shown")
	}
}

func TestSSHPrivateKeyUpload(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/credentials/new?kind=ssh")
	priv, pub, err := credential.GenerateSSHKey("test")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range map[string]string{"csrf": c.csrf, "kind": "ssh", "name": "nas", "host": "nas.example.org", "user": "admin", "generate": "1"} {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("private_key_file", "id_ed25519")
	fw.Write([]byte(priv))
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/credentials/new", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r := c.do(req)
	if r.status != http.StatusSeeOther {
		t.Fatalf("upload: %d\n%s", r.status, r.body)
	}
	// The uploaded key wins over "generate": its public half is shown.
	page := c.get(r.location)
	if !strings.Contains(html.UnescapeString(page.body), strings.Fields(pub)[1]) || strings.Contains(page.body, "PRIVATE KEY") {
		t.Fatalf("the uploaded key's public half is not shown, or the private key is")
	}
}

// wizardForm is a complete wizard submission for the review step.
func wizardForm(name string) url.Values {
	return url.Values{
		"step": {"5"}, "action": {"create"},
		"name": {name}, "provider": {"aws"}, "credentials": {"my-aws"}, "region": {"eu-west-1"}, "size": {"small"},
		"admin_cidrs": {"203.0.113.7/32"}, "device_cidrs": {"0.0.0.0/0"}, "data_volume_gb": {"20"},
		"structured": {"yes"}, "time_series": {"yes"}, "db_kind": {""}, "retention_days": {"0"},
		"field_name": {"temperature", "humidity", ""}, "field_type": {"float", "float", "float"},
		"mqtt": {"true"}, "amqp": {"true"}, "tls": {"true"}, "plaintext": {"false"},
		"handler": {"def process(msg):\n    return msg[\"payload\"]\n"}, "timeout_seconds": {"10"}, "workers": {"1"},
	}
}

func (c *client) addAWS(name string) {
	c.e.t.Helper()
	c.get("/credentials/new?kind=aws")
	r := c.post("/credentials/new", url.Values{"kind": {"aws"}, "name": {name}, "access_key_id": {awsKey}, "secret_access_key": {awsSecret}})
	if r.status != http.StatusSeeOther {
		c.e.t.Fatalf("add credential: %d\n%s", r.status, r.body)
	}
}

func TestWizardCreatesTheDesign(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.addAWS("my-aws")
	before := e.finds.Load()
	page := c.get("/platforms/new")
	if n := e.finds.Load() - before; n != 1 {
		t.Errorf("the wizard's page loaded (and decrypted) the credentials %d times, want once", n)
	}
	if !strings.Contains(page.body, `value="my-aws"  selected`) && !strings.Contains(page.body, `value="my-aws" selected`) {
		t.Errorf("the wizard does not suggest the saved credential")
	}
	// Step 1 without admin networks stays on step 1 with the error inline.
	f := wizardForm("greenhouse")
	f.Set("step", "1")
	f.Set("action", "next")
	f.Del("admin_cidrs")
	r := c.post("/platforms/new", f)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-admin_cidrs-err"`) || !strings.Contains(r.body, "Name and target") {
		t.Fatalf("step 1 without admin networks: %d", r.status)
	}
	// Step 2 shows the recommendation with its reason.
	f.Set("admin_cidrs", "203.0.113.7/32")
	r = c.post("/platforms/new", f)
	if r.status != 200 || !strings.Contains(r.body, "Recommended database") || !strings.Contains(r.body, "Structured time series: TimescaleDB") {
		t.Fatalf("step 2: %d", r.status)
	}
	// The wizard's script gets every recommendation, each with its reason.
	for _, st := range []bool{true, false} {
		for _, ts := range []bool{true, false} {
			k, why := myt.RecommendDatabase(st, ts)
			want := fmt.Sprintf(`data-structured="%t" data-time-series="%t" data-kind="%s"`, st, ts, k)
			if !strings.Contains(r.body, want) || !strings.Contains(html.UnescapeString(r.body), why) {
				t.Errorf("the wizard lacks the recommendation %s", want)
			}
		}
	}
	// Create.
	r = c.post("/platforms/new", wizardForm("greenhouse"))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/platforms/") {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	ps, err := e.svc.Platforms.FindPlatforms(e.ctxOf(t, "ada", adminPW), myt.PlatformFilter{})
	if err != nil || len(ps) != 1 {
		t.Fatalf("platforms: %v, %v", ps, err)
	}
	d := ps[0].Design
	if ps[0].Status != myt.StatusDesigned || d.Spec.Database.Kind != myt.DatabaseTimescaleDB || d.Spec.Database.Fields["humidity"] != "float" ||
		d.Spec.Target.AdminCIDRs[0] != "203.0.113.7/32" || d.Spec.Broker.Plaintext || !d.Spec.Broker.TLS {
		t.Errorf("stored design: %+v", d)
	}
	loc, _, _ := strings.Cut(r.location, "?")
	detail := c.get(r.location)
	if !strings.Contains(detail.body, "Not deployed yet") || !strings.Contains(detail.body, "kind: timescaledb") {
		t.Errorf("detail page lacks the design or the empty panels")
	}
	if _, why := myt.RecommendDatabase(true, true); !strings.Contains(html.UnescapeString(detail.body), why) {
		t.Errorf("detail page lacks the reason for TimescaleDB: %q", why)
	}
	creds, _ := e.svc.Credentials.FindCredentials(e.ctxOf(t, "ada", adminPW), myt.CredentialFilter{})
	if !strings.Contains(detail.body, `href="/credentials/`+itoa(creds[0].ID)+`"`) {
		t.Errorf("the detail page does not link its credential")
	}
	if page := c.get("/credentials/" + itoa(creds[0].ID)); !strings.Contains(page.body, `href="/platforms/`+strings.TrimPrefix(loc, "/platforms/")+`"`) {
		t.Errorf("the credential page does not list the platform that uses it")
	}
	dl := c.get(loc + "/design.yaml")
	if dl.status != 200 || !strings.Contains(dl.header.Get("Content-Disposition"), "greenhouse.yaml") || !strings.HasPrefix(dl.body, "apiVersion: myt/v1") {
		t.Errorf("download: %d %q", dl.status, dl.header.Get("Content-Disposition"))
	}
	// The same name again is reported on the name input of step 1.
	r = c.post("/platforms/new", wizardForm("greenhouse"))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "already have a platform with this name") || !strings.Contains(r.body, "Name and target") {
		t.Errorf("duplicate name: %d", r.status)
	}
	// A credential of another user, or none, is reported too.
	f = wizardForm("orchard")
	f.Set("credentials", "nobody-has-this")
	r = c.post("/platforms/new", f)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-credentials-err"`) {
		t.Errorf("unknown credential: %d", r.status)
	}
}

// setStatus sets a platform's status directly in the database: no service
// method does (a deploy job does, and these tests run none).
func (e *env) setStatus(name, status string) {
	e.t.Helper()
	sdb, err := sql.Open("sqlite", "file:"+e.db.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		e.t.Fatal(err)
	}
	defer sdb.Close()
	res, err := sdb.Exec("UPDATE platforms SET status = ? WHERE name = ?", status, name)
	if err != nil {
		e.t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		e.t.Fatalf("set status of %s: %d rows", name, n)
	}
}

// TestCredentialUsedByMatchesDelete checks that the credential page counts
// as users exactly the platforms that keep the delete from succeeding.
func TestCredentialUsedByMatchesDelete(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.addAWS("my-aws")
	if r := c.post("/platforms/new", wizardForm("greenhouse")); r.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	creds, err := e.svc.Credentials.FindCredentials(e.ctxOf(t, "ada", adminPW), myt.CredentialFilter{})
	if err != nil || len(creds) != 1 {
		t.Fatalf("credentials: %v, %v", creds, err)
	}
	path := "/credentials/" + itoa(creds[0].ID)
	page := c.get(path)
	if !strings.Contains(page.body, "1 platform(s) use it.") || strings.Contains(page.body, "No platform uses this credential yet.") {
		t.Fatalf("a designed platform is not listed as a user:\n%s", page.body)
	}
	if r := c.post(path+"/delete", nil); r.status != http.StatusConflict || !strings.Contains(r.body, "greenhouse") {
		t.Fatalf("delete of a used credential: %d, want 409 naming the platform\n%s", r.status, r.body)
	}
	e.setStatus("greenhouse", myt.StatusDestroyed)
	page = c.get(path)
	if strings.Contains(page.body, "platform(s) use it.") || !strings.Contains(page.body, "No platform uses this credential yet.") {
		t.Fatalf("a destroyed platform is listed as a user:\n%s", page.body)
	}
	if r := c.post(path+"/delete", nil); r.status != http.StatusSeeOther || r.location != "/credentials?ok=deleted" {
		t.Fatalf("delete of a credential only a destroyed platform names: %d %s\n%s", r.status, r.location, r.body)
	}
}

func TestImportYAML(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/platforms/import")
	r := c.post("/platforms/import", url.Values{"document": {"apiVersion: myt/v1\nkind: Platform\nmetadata: {name: x}\nspec: {target: {provider: moon}, database: {kind: mysql}, bogus: 1}\n"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "spec.bogus") {
		t.Fatalf("invalid design: %d\n%s", r.status, r.body)
	}
	doc := "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: shed}\nspec: {target: {provider: local}, database: {kind: influxdb}}\n"
	r = c.post("/platforms/import", url.Values{"document": {doc}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("valid design: %d\n%s", r.status, r.body)
	}
	if page := c.get("/"); !strings.Contains(page.body, "shed") || !strings.Contains(page.body, "badge-designed") {
		t.Error("the dashboard does not list the imported platform")
	}
	// Edit it: a bad document is refused with its path, a good one saved.
	edit := strings.Replace(r.location, "?created=1", "", 1) + "/edit"
	if page := c.get(edit); page.status != 200 || !strings.Contains(page.body, "kind: influxdb") {
		t.Fatalf("edit page: %d", page.status)
	}
	if r := c.post(edit, url.Values{"document": {strings.Replace(doc, "influxdb", "oracle", 1)}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "spec.database.kind") {
		t.Errorf("bad edit: %d", r.status)
	}
	if r := c.post(edit, url.Values{"document": {strings.Replace(doc, "influxdb", "mongodb", 1)}}); r.status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", r.status, r.body)
	}
	ps, _ := e.svc.Platforms.FindPlatforms(e.ctxOf(t, "ada", adminPW), myt.PlatformFilter{})
	if len(ps) != 1 || ps[0].Design.Spec.Database.Kind != myt.DatabaseMongoDB || ps[0].Revision != 2 {
		t.Errorf("after edit: %+v", ps[0])
	}
	// The processing code has its own editor: the template to start from,
	// validation next to the code, a new revision.
	code := strings.Replace(edit, "/edit", "/handler", 1)
	if page := c.get(code); page.status != 200 || !strings.Contains(page.body, "def process(msg)") {
		t.Fatalf("code page: %d", page.status)
	}
	if r := c.post(code, url.Values{"handler": {"print('hello')\n"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-handler-err"`) {
		t.Errorf("code without process(): %d", r.status)
	}
	conv := "def process(msg):\n    p = msg['payload']\n    return {'temperature': p['raw'] / 10}\n"
	if r := c.post(code, url.Values{"handler": {conv}}); r.status != http.StatusSeeOther {
		t.Fatalf("save code: %d\n%s", r.status, r.body)
	}
	ps, _ = e.svc.Platforms.FindPlatforms(e.ctxOf(t, "ada", adminPW), myt.PlatformFilter{})
	if ps[0].Design.Spec.Processing.Handler != conv || ps[0].Revision != 3 || ps[0].Design.Spec.Database.Kind != myt.DatabaseMongoDB {
		t.Errorf("after saving code: revision %d, handler %q", ps[0].Revision, ps[0].Design.Spec.Processing.Handler)
	}
}

func TestUsersCannotSeeEachOthersThings(t *testing.T) {
	e := newEnv(t, false)
	ada := e.setup()
	ada.addAWS("my-aws")
	r := ada.post("/platforms/new", wizardForm("greenhouse"))
	if r.status != http.StatusSeeOther {
		t.Fatalf("create: %d", r.status)
	}
	platform, _, _ := strings.Cut(r.location, "?")
	creds, _ := e.svc.Credentials.FindCredentials(e.ctxOf(t, "ada", adminPW), myt.CredentialFilter{})
	credPage := "/credentials/" + itoa(creds[0].ID)

	bob := e.member(ada, "bob", "bob password 1")
	for _, p := range []string{platform, platform + "/design.yaml", platform + "/delete", platform + "/edit", platform + "/handler", credPage, "/platforms/999999", "/no/such/page"} {
		if r := bob.get(p); r.status != http.StatusNotFound || strings.Contains(r.body, "greenhouse") || strings.Contains(r.body, awsKey) || !strings.Contains(r.body, "Go to your platforms") {
			t.Errorf("bob GET %s: %d, want 404 without ada's data", p, r.status)
		}
	}
	bob.get("/")
	if r := bob.post(platform+"/delete", url.Values{"confirm": {"greenhouse"}}); r.status != http.StatusNotFound {
		t.Errorf("bob deleting ada's platform: %d", r.status)
	}
	if r := bob.post(platform+"/edit", url.Values{"document": {"apiVersion: myt/v1\nkind: Platform\nmetadata: {name: greenhouse}\nspec: {target: {provider: local}, database: {kind: mysql}}\n"}}); r.status != http.StatusNotFound {
		t.Errorf("bob editing ada's platform: %d", r.status)
	}
	if r := bob.post(credPage+"/delete", nil); r.status != http.StatusNotFound {
		t.Errorf("bob deleting ada's credential: %d", r.status)
	}
	if page := bob.get("/"); strings.Contains(page.body, "greenhouse") {
		t.Error("bob's dashboard lists ada's platform")
	}
	if page := bob.get("/credentials"); strings.Contains(page.body, "my-aws") {
		t.Error("bob's credentials list ada's")
	}
	// Not an admin: no users page, no user actions.
	for _, p := range []string{"/admin/users", "/admin/users/1/reset"} {
		if r := bob.get(p); r.status != http.StatusForbidden {
			t.Errorf("bob GET %s: %d, want 403", p, r.status)
		}
	}
	bob.get("/")
	if r := bob.post("/admin/users", url.Values{"username": {"eve"}, "password": {"eve password 1"}, "admin": {"1"}}); r.status != http.StatusForbidden {
		t.Errorf("bob creating a user: %d", r.status)
	}
	// Ada's things are still there.
	if r := ada.get(platform); r.status != 200 {
		t.Errorf("ada's platform after bob's attempts: %d", r.status)
	}
	if r := ada.get(platform + "/delete"); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := ada.post(platform+"/delete", url.Values{"confirm": {"wrong"}}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("delete with the wrong name: %d", r.status)
	}
	if r := ada.post(platform+"/delete", url.Values{"confirm": {"greenhouse"}}); r.status != http.StatusSeeOther {
		t.Errorf("delete: %d", r.status)
	}
	if r := ada.get(platform); r.status != http.StatusNotFound {
		t.Errorf("deleted platform: %d", r.status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestInvitationSignup(t *testing.T) {
	e := newEnv(t, false)
	ada := e.setup()
	ada.get("/admin/users")
	r := ada.post("/admin/invites", nil)
	m := regexp.MustCompile(`/signup\?invite=([^<"\s]+)`).FindStringSubmatch(r.body)
	if r.status != 200 || m == nil {
		t.Fatalf("invite: %d", r.status)
	}
	code, _ := url.QueryUnescape(html.UnescapeString(m[1]))
	// Without an invitation, sign-up is closed.
	anon := e.client()
	if r := anon.get("/signup"); r.status != http.StatusForbidden {
		t.Errorf("closed sign-up: %d", r.status)
	}
	if r := anon.get("/signup?invite=" + url.QueryEscape(code)); r.status != 200 {
		t.Fatalf("sign-up page: %d", r.status)
	}
	r = anon.post("/signup", url.Values{"invite": {code}, "username": {"carol"}, "password": {"carol password"}, "password2": {"carol password"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-up: %d\n%s", r.status, r.body)
	}
	if page := anon.get("/"); page.status != 200 || !strings.Contains(page.body, "carol") {
		t.Errorf("after sign-up: %d", page.status)
	}
	// The code works once.
	again := e.client()
	again.get("/signup?invite=" + url.QueryEscape(code))
	if r := again.post("/signup", url.Values{"invite": {code}, "username": {"dave"}, "password": {"dave password"}, "password2": {"dave password"}}); r.status == http.StatusSeeOther {
		t.Error("an invitation worked twice")
	}
	// Open sign-up, set by the admin.
	ada.get("/admin/users")
	ada.post("/admin/settings", url.Values{"open_signup": {"1"}})
	open := e.client()
	if r := open.get("/login"); !strings.Contains(r.body, `href="/signup"`) {
		t.Error("the login page does not offer sign-up when it is open")
	}
	if r := open.get("/signup"); r.status != 200 {
		t.Errorf("open sign-up: %d", r.status)
	}
}

func TestPasswordResetAsksToReenterCredentials(t *testing.T) {
	e := newEnv(t, false)
	ada := e.setup()
	bob := e.member(ada, "bob", "bob password 1")
	bob.addAWS("bobs-aws")
	users, _ := e.svc.Users.FindUsers(e.ctxOf(t, "ada", adminPW))
	var bobID int64
	for _, u := range users {
		if u.Username == "bob" {
			bobID = u.ID
		}
	}
	page := ada.get("/admin/users/" + itoa(bobID) + "/reset")
	if !strings.Contains(page.body, "saved cloud credentials will become unreadable") {
		t.Error("the reset page does not explain the consequence")
	}
	if r := ada.post("/admin/users/"+itoa(bobID)+"/reset", url.Values{"password": {"new bob password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("reset: %d\n%s", r.status, r.body)
	}
	// Bob's old session ended.
	if r := bob.get("/"); r.status != http.StatusSeeOther {
		t.Errorf("bob's old session after the reset: %d", r.status)
	}
	bob = e.login("bob", "new bob password")
	page = bob.get("/credentials")
	if !strings.Contains(page.body, "need to be entered again") || !strings.Contains(page.body, "locked") {
		t.Fatalf("no banner or locked badge after the reset")
	}
	if r := bob.post("/account/lost-credentials", nil); r.status != http.StatusSeeOther {
		t.Fatalf("acknowledge: %d", r.status)
	}
	page = bob.get("/credentials")
	if strings.Contains(page.body, "need to be entered again") || strings.Contains(page.body, "bobs-aws") {
		t.Error("the banner or the lost credential is still there")
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.addAWS("my-aws")
	c.get("/account")
	if r := c.post("/account/password", url.Values{"old_password": {"nope nope nope"}, "password": {"another password"}, "password2": {"another password"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-old_password-err"`) {
		t.Errorf("wrong old password: %d", r.status)
	}
	if r := c.post("/account/password", url.Values{"old_password": {adminPW}, "password": {"another password"}, "password2": {"another password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("change: %d\n%s", r.status, r.body)
	}
	ctx := e.ctxOf(t, "ada", "another password")
	cs, _ := e.svc.Credentials.FindCredentials(ctx, myt.CredentialFilter{})
	if len(cs) != 1 {
		t.Fatal("credential gone")
	}
	if sec, err := e.svc.Credentials.OpenCredential(ctx, cs[0].ID); err != nil || sec["secret_access_key"] != awsSecret {
		t.Errorf("credential after a password change: %v", err)
	}
}

func TestTokensAreShownOnce(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/tokens")
	r := c.post("/tokens", url.Values{"name": {"laptop"}, "ttl": {"30d"}})
	m := regexp.MustCompile(`data-testid="new-token">([^<]+)<`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no token shown: %d", r.status)
	}
	token := html.UnescapeString(m[1])
	if _, _, err := e.svc.Sessions.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("the token shown does not work: %v", err)
	}
	page := c.get("/tokens")
	if strings.Contains(page.body, token) || !strings.Contains(page.body, "laptop") {
		t.Error("the token list shows the secret, or not the token")
	}
	ts, _ := e.svc.Sessions.FindSessions(e.ctxOf(t, "ada", adminPW), myt.SessionAPI)
	if r := c.post("/tokens/"+itoa(ts[0].ID)+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	if _, _, err := e.svc.Sessions.Authenticate(context.Background(), token); err == nil {
		t.Error("a revoked token still works")
	}
	if r := c.post("/tokens", url.Values{"name": {""}, "ttl": {"30d"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-name-err"`) {
		t.Errorf("token without a name: %d", r.status)
	}
}

func TestSecurityHeadersAndAssets(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	r := c.get("/setup")
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers: %v", r.header)
	}
	m := regexp.MustCompile(`href="(/static/style\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no stylesheet link")
	}
	css := c.get(m[1])
	if css.status != 200 || !strings.Contains(css.header.Get("Cache-Control"), "immutable") || !strings.Contains(css.body, "prefers-color-scheme") {
		t.Errorf("stylesheet: %d %q", css.status, css.header.Get("Cache-Control"))
	}
	// No inline script or style attribute anywhere: the CSP would block them.
	if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " style=") || strings.Contains(r.body, " onclick=") {
		t.Error("the page has inline script or style")
	}
}

func TestDisableAndEnableUser(t *testing.T) {
	e := newEnv(t, false)
	ada := e.setup()
	bob := e.member(ada, "bob", "bob password 1")
	users, _ := e.svc.Users.FindUsers(e.ctxOf(t, "ada", adminPW))
	var bobID, adaID int64
	for _, u := range users {
		switch u.Username {
		case "bob":
			bobID = u.ID
		case "ada":
			adaID = u.ID
		}
	}
	ada.get("/admin/users")
	if r := ada.post("/admin/users/"+itoa(bobID)+"/disable", nil); r.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", r.status)
	}
	if r := bob.get("/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login") {
		t.Errorf("disabled bob's session: %d → %s", r.status, r.location)
	}
	c := e.client()
	c.get("/login")
	if r := c.post("/login", url.Values{"username": {"bob"}, "password": {"bob password 1"}}); r.status != http.StatusUnauthorized {
		t.Errorf("disabled bob signs in: %d", r.status)
	}
	if page := ada.get("/admin/users"); !strings.Contains(page.body, "disabled") {
		t.Error("the users page does not show bob as disabled")
	}
	if r := ada.post("/admin/users/"+itoa(bobID)+"/enable", nil); r.status != http.StatusSeeOther {
		t.Fatalf("enable: %d", r.status)
	}
	e.login("bob", "bob password 1")
	// An admin cannot disable themselves: the service refuses, the page says why.
	ada.get("/admin/users")
	if r := ada.post("/admin/users/"+itoa(adaID)+"/disable", nil); r.status != http.StatusBadRequest || !strings.Contains(r.body, "Create an account") || !strings.Contains(r.body, "error-summary") {
		t.Errorf("self-disable: %d, want 400", r.status)
	}
}

// TestEveryPostNeedsTheAntiForgeryToken sends every state-changing route of
// web.go without a token, as a signed-in admin, and expects 403 and no
// change. The route list is read from web.go so a new form cannot be
// forgotten here.
func TestEveryPostNeedsTheAntiForgeryToken(t *testing.T) {
	src, err := os.ReadFile("web.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`"POST (/[^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 15 {
		t.Fatalf("found only %d POST routes in web.go", len(routes))
	}
	e := newEnv(t, false)
	ada := e.setup()
	ada.addAWS("my-aws")
	r := ada.post("/platforms/new", wizardForm("greenhouse"))
	if r.status != http.StatusSeeOther {
		t.Fatalf("create: %d", r.status)
	}
	e.member(ada, "bob", "bob password 1")
	ada.get("/admin/users")
	ada.post("/admin/invites", nil)
	before := e.snapshot(t)
	for _, m := range routes {
		path := strings.ReplaceAll(m[1], "{id}", "1")
		form := url.Values{"csrf": {""}, "name": {"x"}, "username": {"eve"}, "password": {"eve password 1"}, "password2": {"eve password 1"},
			"confirm": {"greenhouse"}, "document": {"apiVersion: myt/v1"}, "open_signup": {"1"}}
		if r := ada.post(path, form); r.status != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d, want 403", path, r.status)
		}
	}
	if after := e.snapshot(t); after != before {
		t.Errorf("state changed by refused requests:\nbefore %s\nafter  %s", before, after)
	}
	// The session still works: nothing above signed ada out.
	if r := ada.get("/"); r.status != 200 {
		t.Errorf("after the refused posts: %d", r.status)
	}
}

// snapshot summarises what the refused requests could have changed.
func (e *env) snapshot(t *testing.T) string {
	t.Helper()
	ctx := e.ctxOf(t, "ada", adminPW)
	us, _ := e.svc.Users.FindUsers(ctx)
	ps, _ := e.svc.Platforms.FindPlatforms(ctx, myt.PlatformFilter{})
	cs, _ := e.svc.Credentials.FindCredentials(ctx, myt.CredentialFilter{})
	ts, _ := e.svc.Sessions.FindSessions(ctx, myt.SessionAPI)
	ws, _ := e.svc.Sessions.FindSessions(ctx, myt.SessionWeb)
	is, _ := e.svc.Admin.FindInvites(ctx)
	st, _ := e.svc.Admin.Settings(ctx)
	js, _ := e.runner.FindJobs(ctx, myt.JobFilter{})
	var b strings.Builder
	for _, u := range us {
		b.WriteString(u.Username + "/" + strconv.FormatBool(u.Disabled) + " ")
	}
	for _, p := range ps {
		b.WriteString(p.Name + "@" + strconv.Itoa(p.Revision) + " ")
	}
	b.WriteString(strconv.Itoa(len(cs)) + " creds " + strconv.Itoa(len(ts)) + " tokens " + strconv.Itoa(len(ws)) + " sessions " + strconv.Itoa(len(is)) + " invites open=" + strconv.FormatBool(st.OpenSignup) + " " + strconv.Itoa(len(js)) + " jobs")
	return b.String()
}
