package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/myt-iot/myt/internal/hostile"
)

// TestHostileImport pastes every hostile document into the import form:
// each is refused with the form shown again, quickly and in bounded memory.
func TestHostileImport(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/platforms/import")
	hostile.Run(t, "web POST /platforms/import", func(t *testing.T, data []byte) {
		r := c.post("/platforms/import", url.Values{"document": {string(data)}})
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("import: %d, want 422 with the form", r.status)
		}
	})
}

// TestOversizedFormIs413: a form over the limit is answered 413.
func TestOversizedFormIs413(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/platforms/import")
	r := c.post("/platforms/import", url.Values{"document": {strings.Repeat("x", 3<<20)}})
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "larger than 2 MB") {
		t.Errorf("3 MB form: %d, want 413 saying so", r.status)
	}
}

// TestLoginNextStaysOnSite: after sign-in MyT redirects only to a path of
// its own. Browsers drop tabs and newlines from a URL and read "\" as "/",
// so "/\t/evil.example" is "//evil.example", another site.
func TestLoginNextStaysOnSite(t *testing.T) {
	e := newEnv(t, false)
	e.setup()
	for _, next := range []string{
		"/\t/evil.example/x", "/\n/evil.example", "/\r/evil.example", "/\x00/evil.example", "/\x7f/evil.example",
		"//evil.example", "/\\evil.example", "/\\/evil.example", "\\/evil.example", "https://evil.example/",
		"/ /evil.example", "evil.example",
	} {
		c := e.client()
		c.get("/login")
		r := c.post("/login", url.Values{"username": {"ada"}, "password": {adminPW}, "next": {next}})
		if r.status != http.StatusSeeOther || r.location != "/" {
			t.Errorf("next=%q: %d → %q, want /", next, r.status, r.location)
		}
	}
	c := e.client()
	c.get("/login")
	if r := c.post("/login", url.Values{"username": {"ada"}, "password": {adminPW}, "next": {"/platforms/new?x=1"}}); r.location != "/platforms/new?x=1" {
		t.Errorf("a local next: → %q", r.location)
	}
	// The query form, as a browser sends it.
	r := e.client().get("/login?next=/%09/evil.example/x")
	if strings.Contains(r.body, "evil.example") {
		t.Error("the login page carries the off-site next")
	}
}

// TestDownloadsAreNotCached: a design download (and every other answer of
// a signed-in route) is Cache-Control: no-store, so a shared computer's
// browser cache keeps no copy; static assets stay cacheable.
func TestDownloadsAreNotCached(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	p := c.importPlatform(localDesign)
	for _, path := range []string{p + "/design.yaml", p, "/tokens"} {
		if r := c.get(path); r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: %d, Cache-Control %q, want no-store", path, r.status, r.header.Get("Cache-Control"))
		}
	}
}

// TestAnonymousCSRFCookie: the anonymous forms' double-submit cookie is
// __Host- prefixed behind TLS (so neither a sibling subdomain nor a
// plain-http attacker can plant one) and ends at sign-in, where the
// session's own token takes over.
func TestAnonymousCSRFCookie(t *testing.T) {
	secure := newEnv(t, true)
	secure.setup()
	r := secure.client().get("/login")
	if sc := r.header.Get("Set-Cookie"); !strings.HasPrefix(sc, "__Host-myt_csrf=") || !strings.Contains(sc, "Secure") || !strings.Contains(sc, "Path=/") {
		t.Errorf("behind TLS the CSRF cookie is %q, want __Host-myt_csrf, Secure, Path=/", sc)
	}

	e := newEnv(t, false)
	e.setup()
	c := e.client()
	c.get("/login")
	r = c.post("/login", url.Values{"username": {"ada"}, "password": {adminPW}})
	ended := false
	for _, sc := range r.header.Values("Set-Cookie") {
		ended = ended || strings.HasPrefix(sc, "myt_csrf=;") && strings.Contains(sc, "Max-Age=0")
	}
	if r.status != http.StatusSeeOther || !ended {
		t.Errorf("sign-in: %d, Set-Cookie %q: the anonymous CSRF cookie does not end", r.status, r.header.Values("Set-Cookie"))
	}
}

// TestTypedUserNameIsNotLogged: people type their password into the name
// field; a failed or refused sign-in logs a tag of what was typed, never
// the text, and a successful one logs the name beside its tag.
func TestTypedUserNameIsNotLogged(t *testing.T) {
	e := newEnv(t, false)
	e.setup()
	e.lim.max = 2
	const typed = "Tr0ub4dor&3-typed-as-a-name"
	c := e.client()
	c.get("/login")
	for range 3 { // two failures, then a refusal
		c.post("/login", url.Values{"username": {typed}, "password": {"x"}})
	}
	log := e.log.String()
	if strings.Contains(log, typed) {
		t.Errorf("the log holds what was typed as a user name:\n%s", log)
	}
	if strings.Count(log, "user_tag=") < 3 {
		t.Errorf("the failed and refused sign-ins are not logged with a tag:\n%s", log)
	}
	e.lim.max = 0 // no limit
	e.login("ada", adminPW)
	if !regexp.MustCompile(`msg="web login" user=ada user_tag=[0-9a-f]{8}`).MatchString(e.log.String()) {
		t.Errorf("a successful sign-in does not log the name beside its tag:\n%s", e.log.String())
	}
}
