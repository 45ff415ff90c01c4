package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/myt-iot/myt/internal/testenv"
)

// The browser test drives the real `myt serve` with Debian's headless
// Chromium through the whole first-day story: first-run setup, sign in, save
// an AWS credential, design a platform with the wizard, see it on the
// dashboard; then a second user, created by the admin, cannot see it and
// gets 404 on its address. It saves screenshots of every main page under
// test-artifacts/screenshots/ at the repository root.

const (
	adminName = "ada"
	adminPass = "correct horse battery"
	bobName   = "bob"
	bobPass   = "bob's own passphrase"
	awsKeyID  = "AKIAIOSFODNN7EXAMPLE"
	awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// chromiumPath finds Chromium; outside CI a missing browser skips the test
// loudly, under CI=true it fails it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("MYT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Need(t, "headless Chromium", false, "install it with `apt-get install -y chromium` (or set MYT_CHROMIUM)")
	return ""
}

// screenshotDir is test-artifacts/screenshots at the repository root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "test-artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab with helpers that fail the test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
	axe  string // axe-core's source
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	b := &browser{t: t, ctx: ctx, base: strings.TrimRight(base, "/"), dir: screenshotDir(t)}
	p := axePath()
	testenv.Need(t, "axe-core (accessibility rules)", p != "", "install it with `npm install -g axe-core@4`, or set MYT_AXE_JS to its axe.min.js")
	src, err := os.ReadFile(p)
	if err != nil || len(src) == 0 {
		t.Fatalf("read axe-core from %s: %v (%d bytes)", p, err, len(src))
	}
	b.axe = string(src)
	// Start the browser without a deadline (a timeout here would stop it).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (page %s)", what, err, b.location())
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// eval evaluates a JavaScript expression in the page (DevTools evaluation
// is not subject to the page's Content-Security-Policy).
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!(function(){try{return "+cond+"}catch(e){return false}})()"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s (%s): timed out on %s; page says: %.600s", what, cond, b.location(), b.text("main"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitPath waits until the page's path (and query) starts with p.
func (b *browser) waitPath(p string) {
	b.t.Helper()
	b.waitFor("page "+p, fmt.Sprintf("document.readyState==='complete' && (location.pathname+location.search).startsWith(%q)", p))
}

func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf("(document.querySelector(%q)||{}).innerText||''", sel)))
	return s
}

func (b *browser) html() string {
	return eval[string](b, "document.documentElement.outerHTML")
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// fill sets an input's value as typing would.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	b.do("fill "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// submit clicks a button and waits for the next page to load.
func (b *browser) submit(sel string) {
	b.t.Helper()
	eval[bool](b, "window.__mytOld = true")
	b.click(sel)
	b.waitFor("the next page after "+sel, "window.__mytOld === undefined && document.readyState === 'complete'")
}

func (b *browser) see(what string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("text %q", what), fmt.Sprintf("document.body.innerText.includes(%q)", what))
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	// Every page worth a screenshot is worth an accessibility check.
	b.accessible(name)
}

// colorScheme switches prefers-color-scheme ("" resets it).
func (b *browser) colorScheme(v string) {
	b.t.Helper()
	f := []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}
	b.do("color scheme", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: f})
		return chromedp.Void{}, err
	})
	time.Sleep(300 * time.Millisecond) // let colour transitions finish

}

// axePath finds axe-core's axe.min.js (npm package axe-core): $MYT_AXE_JS,
// or a global npm install.
func axePath() string {
	for _, p := range []string{os.Getenv("MYT_AXE_JS"), "/usr/local/lib/node_modules/axe-core/axe.min.js", "/usr/lib/node_modules/axe-core/axe.min.js"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// axeViolation is one rule axe-core found broken on a page.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any `json:"target"`
	} `json:"nodes"`
}

// accessible runs axe-core's WCAG 2 A/AA rules on the current page and
// fails the test on serious or critical violations. DevTools evaluation is
// not subject to the page's CSP, so the page itself stays strict.
func (b *browser) accessible(page string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](b.axe+";0")); err != nil {
		b.t.Fatalf("load axe-core: %v", err)
	}
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}).then(r => r.violations)`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("run axe-core on %s: %v", page, err)
	}
	for _, v := range vs {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprint(n.Target...))
		}
		b.t.Errorf("accessibility (%s) on %s: %s [%s] at %s", v.Impact, page, v.Help, v.ID, strings.Join(where, ", "))
	}
}

func (b *browser) signOut() {
	b.t.Helper()
	b.submit(`form[action="/logout"] button`)
	b.waitPath("/login")
}

func (b *browser) signIn(user, pass string) {
	b.t.Helper()
	b.open("/login")
	b.fill("#f-username", user)
	b.fill("#f-password", pass)
	b.submit(`main button[type=submit]`)
}

func TestBrowserFirstDay(t *testing.T) {
	chromiumPath(t) // skip or fail before building anything
	srv := startServer(t)
	b := newBrowser(t, srv.URL)

	// First run: every page leads to the setup of the first admin.
	b.open("/credentials")
	b.waitPath("/setup")
	b.see("Create the first account")
	b.screenshot("01-setup")
	// A mismatched repeat is caught inline, next to its input.
	b.fill("#f-username", adminName)
	b.fill("#f-password", adminPass)
	b.fill("#f-password2", adminPass+"x")
	b.submit(`main button[type=submit]`)
	b.waitFor("inline error on the repeated password", `document.querySelector('#f-password2').getAttribute('aria-invalid') === 'true' && document.querySelector('#f-password2-err') !== null`)
	b.screenshot("01b-setup-error")
	b.fill("#f-password", adminPass)
	b.fill("#f-password2", adminPass)
	b.submit(`main button[type=submit]`)
	b.waitPath("/")
	b.see("Design your first platform")
	b.screenshot("02-dashboard-empty")

	// Sign out, fail once, sign in.
	b.signOut()
	b.see("You are signed out")
	b.signIn(adminName, "not the password")
	b.see("The username or password is not right")
	b.screenshot("03-login-error")
	b.signIn(adminName, adminPass)
	b.waitPath("/")
	b.see("Design your first platform")

	// Credentials: empty state, then an AWS credential with a bad key first.
	b.open("/credentials")
	b.see("No credentials yet")
	b.screenshot("04-credentials-empty")
	b.click(`a.kind-tile[href="/credentials/new?kind=aws"]`)
	b.waitPath("/credentials/new?kind=aws")
	b.fill("#f-name", "my-aws")
	b.fill("#f-access_key_id", "not-a-key")
	b.fill("#f-secret_access_key", awsSecret)
	b.submit(`main button[type=submit]`)
	b.waitFor("inline error on the access key", `document.querySelector('#f-access_key_id').getAttribute('aria-invalid') === 'true'`)
	if strings.Contains(b.html(), awsSecret) {
		t.Fatal("the form re-rendered with the secret access key in the page")
	}
	b.screenshot("05-credential-form-error")
	b.fill("#f-access_key_id", awsKeyID)
	b.fill("#f-secret_access_key", awsSecret)
	b.fill("#f-region", "eu-west-1")
	b.submit(`main button[type=submit]`)
	b.waitPath("/credentials/")
	b.see("The credential was saved")
	if h := b.html(); strings.Contains(h, awsSecret) || !strings.Contains(h, awsKeyID) {
		t.Fatalf("credential page: secret shown=%v, key id shown=%v", strings.Contains(h, awsSecret), strings.Contains(h, awsKeyID))
	}
	b.screenshot("06-credential")
	b.open("/credentials")
	b.see("my-aws")
	// An SSH server credential with a key pair MyT generates: the public
	// key to install is shown, the private key never.
	b.open("/credentials/new?kind=ssh")
	b.fill("#f-name", "pi")
	b.fill("#f-host", "192.0.2.10")
	b.fill("#f-user", "root")
	b.waitFor("the private key input hidden while generating", `document.querySelector('#ssh-paste').offsetParent === null`)
	b.click(`input[name=generate][value="0"]`)
	b.waitFor("the private key input shown", `document.querySelector('#ssh-paste').offsetParent !== null`)
	b.click(`input[name=generate][value="1"]`)
	b.screenshot("07b-credential-ssh-form")
	b.submit(`main button[type=submit]`)
	b.see("Public key to install")
	if h := b.html(); !strings.Contains(h, "ssh-ed25519 ") || strings.Contains(h, "PRIVATE KEY") {
		t.Fatal("the SSH credential page does not show the public key, or shows the private key")
	}
	b.screenshot("07c-credential-ssh")
	b.open("/credentials")
	b.see("my-aws")
	b.see("Existing server (SSH)")
	b.screenshot("07-credentials")

	// The wizard. Step 1: the AWS credential and its region are suggested.
	b.open("/platforms/new")
	b.see("Name and target")
	if got := eval[string](b, `document.querySelector('#f-credentials').value`); got != "my-aws" {
		t.Fatalf("wizard suggested credential %q, want my-aws", got)
	}
	b.fill("#f-name", "greenhouse")
	b.fill("#f-description", "Sensors in the north greenhouse")
	b.submit(`button[value=next]:not(.default-submit)`)
	// No admin networks: the step says so next to the input.
	b.waitFor("inline error on admin networks", `document.querySelector('#f-admin_cidrs').getAttribute('aria-invalid') === 'true'`)
	b.screenshot("08-wizard-1-target-error")
	b.fill("#f-admin_cidrs", "203.0.113.7/32")
	b.screenshot("08b-wizard-1-target")
	// Region and zone follow the provider: Google Cloud's examples, and
	// its zone is required; back on AWS the zone is optional again.
	b.click(`label.tile:has(input[value=gcp])`)
	b.waitFor("gcp zone hints", `document.querySelector('#f-zone').placeholder === 'europe-west1-b' && document.querySelector('#f-region').placeholder === 'europe-west1' && document.querySelector('#f-region').value === '' && document.querySelector('[data-zone-required]').offsetParent !== null && document.querySelector('[data-zone-optional]').offsetParent === null`)
	b.screenshot("08d-wizard-1-target-gcp-zone")
	b.click(`label.tile:has(input[value=aws])`)
	b.waitFor("aws zone hints", `document.querySelector('#f-zone').placeholder === 'eu-west-1a' && document.querySelector('[data-zone-optional]').offsetParent !== null && document.querySelector('#f-credentials').value === 'my-aws' && document.querySelector('#f-region').value === 'eu-west-1'`)
	b.submit(`button[value=next]:not(.default-submit)`)
	b.see("Is your data structured?")
	// Step 2: structured time series → TimescaleDB, with its reason; the
	// recommendation follows the answers at once.
	b.see("TimescaleDB")
	b.click(`input[name=time_series][value=no]`)
	b.waitFor("recommendation MySQL", `document.querySelector('[data-rec-kind]').textContent === 'MySQL'`)
	b.click(`input[name=time_series][value=yes]`)
	b.waitFor("recommendation TimescaleDB", `document.querySelector('[data-rec-kind]').textContent === 'TimescaleDB'`)
	// One blank row to start; "Add a field" adds one, with its own example.
	b.fill("#fn-0", "temperature")
	if eval[bool](b, `document.querySelector('#fn-1') !== null`) {
		t.Error("the data step starts with more than one blank field row")
	}
	b.submit(`button[value=more_fields]`)
	b.fill("#fn-1", "humidity")
	if ph := eval[string](b, `[...document.querySelectorAll('input[name=field_name]')].map(i => i.placeholder).join(',')`); ph != "temperature,humidity" {
		t.Errorf("field row placeholders %q", ph)
	}
	b.screenshot("09-wizard-2-data")
	b.submit(`button[value=next]:not(.default-submit)`)
	b.see("RabbitMQ receives your devices")
	b.screenshot("10-wizard-3-broker")
	b.submit(`button[value=next]:not(.default-submit)`)
	b.waitFor("the handler template", `document.querySelector('#f-handler').value.includes('def process(msg)')`)
	b.screenshot("11-wizard-4-processing")
	b.submit(`button[value=next]:not(.default-submit)`)
	b.see("This is the design MyT will save")
	b.screenshot("12-wizard-5-review")
	b.submit(`button[value=create]:not(.default-submit)`)
	b.waitPath("/platforms/")
	b.see("The platform design was saved")
	b.see("Not deployed yet")
	b.see("temperature")
	b.see("TimescaleDB")
	platformURL, _, _ := strings.Cut(b.location(), "?")
	b.screenshot("13-platform")
	b.open(strings.TrimPrefix(platformURL, srv.URL) + "/edit")
	b.see("Edit greenhouse")
	b.screenshot("13b-platform-edit")
	// Randy's story: fix the data on the platform, not on every device.
	b.open(strings.TrimPrefix(platformURL, srv.URL))
	b.click(`a[href$="/handler"]`)
	b.waitPath("/platforms/")
	b.see("Processing code")
	// Python that does not compile is refused where it is written, with
	// its line and column.
	b.fill("#f-handler", "def process(msg)\n    return msg\n")
	b.submit(`main button[type=submit]`)
	b.see("line 1, column")
	b.screenshot("13d-platform-code-syntax-error")
	b.fill("#f-handler", "def process(msg):\n    p = msg[\"payload\"]\n    return {\"temperature\": round(p[\"raw\"] / 10.0, 1)}\n")
	b.screenshot("13c-platform-code")
	b.submit(`main button[type=submit]`)
	b.see("The design was updated to revision 2")

	// The dashboard lists it, with its status.
	b.open("/")
	b.see("greenhouse")
	b.waitFor("a designed badge", `document.querySelector('.platform-card .badge-designed') !== null`)
	b.screenshot("14-dashboard")
	b.colorScheme("dark")
	b.screenshot("14b-dashboard-dark")
	b.colorScheme("")
	b.do("narrow viewport", chromedp.EmulateViewport(390, 844))
	b.open("/")
	b.see("greenhouse")
	b.screenshot("14c-dashboard-mobile")
	// At 375 px the main navigation fits without scrolling.
	b.do("phone viewport", chromedp.EmulateViewport(375, 812))
	b.open("/")
	b.waitFor("the tab bar fits", `(n => n.scrollWidth <= n.clientWidth && n.querySelectorAll('a').length >= 4)(document.querySelector('.sidebar nav'))`)
	b.screenshot("14d-dashboard-375")
	b.open(strings.TrimPrefix(platformURL, srv.URL))
	b.see("Not deployed yet")
	b.screenshot("13e-platform-375")
	b.do("wide viewport", chromedp.EmulateViewport(1280, 900))

	// The wizard adapts to the provider: this machine needs no credential,
	// region or admin networks.
	b.open("/platforms/new")
	b.click(`label.tile:has(input[value=local])`)
	b.waitFor("cloud inputs hidden for local", `document.querySelector('#f-region').offsetParent === null && document.querySelector('#f-credentials').offsetParent === null`)
	b.screenshot("12b-wizard-local")
	b.open("/credentials/new?kind=gcp")
	b.see("Service account key (JSON)")
	b.screenshot("07d-credential-gcp-form")
	b.colorScheme("dark")
	b.open("/platforms/new")
	b.see("Name and target")
	b.screenshot("08c-wizard-dark")
	b.colorScheme("")

	// Import a design from YAML.
	b.open("/platforms/import")
	b.see("Import a design")
	if v := eval[string](b, `document.querySelector('#f-document').value`); v != "" {
		t.Errorf("the import page starts with a document to delete: %q", v)
	}
	b.screenshot("15-import")
	// A YAML mistake: where it is, and the lines around it as lines.
	b.fill("#f-document", "apiVersion: myt/v1\nkind: Platform\nmetadata:\n  name: x: y\nspec: {}\n")
	b.submit(`main button[type=submit]`)
	b.waitFor("the YAML excerpt", `(p => p && p.textContent.includes('>  4 |   name: x: y\n'))(document.querySelector('.error-summary pre.snippet'))`)
	b.screenshot("15b-import-yaml-error")
	b.do("phone viewport", chromedp.EmulateViewport(375, 812))
	b.screenshot("15c-import-yaml-error-375")
	b.do("wide viewport", chromedp.EmulateViewport(1280, 900))

	// API tokens: created and shown once.
	b.open("/tokens")
	b.see("No tokens yet")
	b.fill("#f-name", "laptop CLI")
	b.submit(`form[action="/tokens"] button[type=submit]`)
	b.see(`Token “laptop CLI” created`)
	token := strings.TrimSpace(b.text("#new-token"))
	if len(token) < 20 {
		t.Fatalf("token shown is %q", token)
	}
	b.screenshot("16-tokens")
	b.open("/tokens")
	if strings.Contains(b.html(), token) {
		t.Fatal("the token is shown again after the page was reloaded")
	}
	// The token works on the JSON API.
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/platforms", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/platforms with the new token: %s", resp.Status)
		}
	}

	// Users: the admin creates bob, and an invitation.
	b.open("/admin/users")
	b.fill("#f-username", bobName)
	b.fill("#f-password", bobPass)
	b.submit(`form[action="/admin/users"] button[type=submit]`)
	b.see("The account was created")
	b.submit(`form[action="/admin/invites"] button[type=submit]`)
	b.see("Invitation link")
	if link := b.text("#invite-link"); !strings.Contains(link, "/signup?invite=") {
		t.Fatalf("invitation link %q", link)
	}
	b.screenshot("17-users")
	b.open("/account")
	b.screenshot("18-account")

	// Bob signs in and sees none of ada's things.
	b.signOut()
	b.screenshot("03-login")
	b.signIn(bobName, bobPass)
	b.waitPath("/")
	b.see("Design your first platform")
	if strings.Contains(b.text("main"), "greenhouse") {
		t.Fatal("bob's dashboard shows ada's platform")
	}
	if strings.Contains(b.html(), `href="/admin/users"`) {
		t.Fatal("bob (not an admin) sees the Users page in the navigation")
	}
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(platformURL))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusNotFound {
		t.Fatalf("bob opening ada's platform %s: status %d, want 404", platformURL, resp.Status)
	}
	b.see("Not found")
	b.see("Go to your platforms") // still signed in, in the app's layout
	b.screenshot("19-not-found")
	if strings.Contains(b.html(), "greenhouse") {
		t.Fatal("the 404 page names ada's platform")
	}
	resp, err = chromedp.RunResponse(b.ctx, chromedp.Navigate(srv.URL+"/admin/users"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusForbidden {
		t.Fatalf("bob opening /admin/users: status %d, want 403", resp.Status)
	}
	b.open("/credentials")
	b.see("No credentials yet")

	// A form posted without its anti-forgery token is refused.
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	code, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`fetch('/tokens', {method: 'POST', body: new URLSearchParams({name: 'x'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusForbidden {
		t.Fatalf("POST without the anti-forgery token: status %v, want 403", code)
	}

	// Bob saves a credential; ada resets his password; bob is told clearly
	// that his credentials must be entered again.
	b.open("/credentials/new?kind=aws")
	b.fill("#f-name", "bobs-aws")
	b.fill("#f-access_key_id", awsKeyID)
	b.fill("#f-secret_access_key", awsSecret)
	b.submit(`main button[type=submit]`)
	b.see("The credential was saved")
	b.signOut()
	b.signIn(adminName, adminPass)
	b.waitPath("/")
	b.open("/admin/users")
	b.click(`a[href$="/reset"]`)
	b.waitPath("/admin/users/")
	b.see("credentials will become unreadable")
	b.fill("#f-password", bobPass+" 2")
	b.screenshot("20-reset-password")
	b.submit(`main button[type=submit]`)
	b.see("The password was reset")
	b.signOut()
	b.signIn(bobName, bobPass+" 2")
	b.waitPath("/")
	b.see("Your saved credentials need to be entered again")
	b.open("/credentials")
	b.waitFor("a locked badge", `document.querySelector('.badge-failed') !== null && document.body.innerText.toLowerCase().includes('locked')`)
	b.screenshot("21-credentials-lost")
	b.submit(`form[action="/account/lost-credentials"] button`)
	b.waitPath("/credentials/new")
	if strings.Contains(b.text("main"), "need to be entered again") {
		t.Fatal("the lost-credentials banner is still shown after acknowledging")
	}
	if errors.Is(context.Cause(b.ctx), context.Canceled) {
		t.Fatal("browser context ended early")
	}
}
