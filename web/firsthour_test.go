package web_test

import (
	"html"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"net/url"
)

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not installed")
		}
		t.Skip("python3 is not installed")
	}
}

const badHandler = "def process(msg)\n    return msg\n"

// TestHandlerSyntaxIsCheckedWhereverSaved: Python that does not compile
// is refused by the code page, the wizard and the import page, next to
// the code, with its line and column; nothing is saved.
func TestHandlerSyntaxIsCheckedWhereverSaved(t *testing.T) {
	needPython(t)
	e := newEnv(t, false)
	c := e.setup()
	platform := c.importPlatform(localDesign)

	c.get(platform + "/handler")
	r := c.post(platform+"/handler", url.Values{"handler": {badHandler}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="f-handler-err"`) || !strings.Contains(r.body, "line 1, column") {
		t.Errorf("code page took a syntax error: %d\n%s", r.status, r.body)
	}

	c.addAWS("my-aws")
	c.get("/platforms/new")
	form := wizardForm("hothouse")
	form.Set("handler", badHandler)
	r = c.post("/platforms/new", form)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "line 1, column") {
		t.Errorf("wizard took a syntax error: %d\n%s", r.status, r.body)
	}

	c.get("/platforms/import")
	doc := "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: barn}\nspec:\n  target: {provider: local}\n  database: {kind: mysql}\n  processing: {handler: \"def process(msg)\\n    return msg\\n\"}\n"
	r = c.post("/platforms/import", url.Values{"document": {doc}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "spec.processing.handler") || !strings.Contains(r.body, "line 1, column") {
		t.Errorf("import took a syntax error: %d\n%s", r.status, r.body)
	}
	if page := c.get("/"); strings.Contains(page.body, "hothouse") || strings.Contains(page.body, "barn") {
		t.Error("a platform with a broken handler was saved")
	}
}

// TestYAMLErrorIsShownAsLines: the source excerpt of a YAML syntax error
// keeps its lines (pre-formatted), so the marked line and the caret under
// the column line up.
func TestYAMLErrorIsShownAsLines(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/platforms/import")
	r := c.post("/platforms/import", url.Values{"document": {"apiVersion: myt/v1\nkind: Platform\nmetadata:\n  name: x: y\nspec: {}\n"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "line 4, column 9") || !strings.Contains(r.body, "<pre class=\"snippet\">") || !strings.Contains(r.body, "\n&gt;  4 |   name: x: y\n") {
		t.Errorf("YAML error: %d\n%s", r.status, r.body)
	}
}

// TestImportReportsEveryErrorAtOnce: a document with an unknown field, a
// bad value, a credential the user does not have and a name already
// taken is refused once, with all four problems; the credential's message
// lists the ones of that kind the user has.
func TestImportReportsEveryErrorAtOnce(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.addAWS("lab-aws")
	c.addAWS("my-aws")
	c.importPlatform(localDesign) // "shed"
	doc := "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: shed}\nspec:\n  target: {provider: aws, credentials: my-awz, region: eu-west-1, adminCIDRs: [\"203.0.113.7/32\"], colour: red}\n  database: {kind: oracle}\n"
	c.get("/platforms/import")
	r := c.post("/platforms/import", url.Values{"document": {doc}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("import: %d", r.status)
	}
	for _, want := range []string{"spec.target.colour", "spec.database.kind", "spec.target.credentials", "your aws credentials: lab-aws, my-aws", "metadata.name", "already have a platform"} {
		if !strings.Contains(html.UnescapeString(r.body), want) {
			t.Errorf("the answer lacks %q", want)
		}
	}
}

// TestSetupReportsEveryErrorAtOnce: a bad username, a short password and
// a mismatched repeat are all marked on the first submit.
func TestSetupReportsEveryErrorAtOnce(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	c.get("/setup")
	r := c.post("/setup", url.Values{"username": {"a"}, "password": {"short"}, "password2": {"shorter"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("setup: %d", r.status)
	}
	for _, id := range []string{`id="f-username-err"`, `id="f-password-err"`, `id="f-password2-err"`} {
		if !strings.Contains(r.body, id) {
			t.Errorf("setup answer lacks %s", id)
		}
	}
}

// TestReloadAfterAPostIsNotANotFound: a GET of a POST-only action's URL
// (the reload of a page a form answered there) leads back to its page.
func TestReloadAfterAPostIsNotANotFound(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	platform := c.importPlatform(localDesign)
	for _, path := range []string{platform + "/reveal", "/account/password", "/tokens/1/revoke", "/admin/settings", "/admin/users/1/disable", "/jobs/1/approve", "/logout"} {
		r := c.get(path)
		if r.status != http.StatusSeeOther {
			t.Errorf("GET %s: %d, want a redirect to its page", path, r.status)
			continue
		}
		if page := c.get(r.location); page.status != http.StatusOK && !(path == "/jobs/1/approve" && page.status == http.StatusNotFound) {
			t.Errorf("GET %s → %s: %d", path, r.location, page.status)
		}
	}
}

// TestWizardFieldRowsAndProviderHints: the data step offers one blank row
// with its own example, adds one row at a time and removes any row; the
// target step's region and zone show the chosen provider's examples and
// whether a zone is required.
func TestWizardFieldRowsAndProviderHints(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	page := c.get("/platforms/new?provider=gcp")
	if !strings.Contains(page.body, `placeholder="europe-west1"`) || !strings.Contains(page.body, `placeholder="europe-west1-b"`) || !regexp.MustCompile(`data-zone-optional hidden`).MatchString(page.body) {
		t.Errorf("gcp target step: region/zone hints or the zone's required mark are wrong")
	}
	page = c.get("/platforms/new?provider=aws")
	if !strings.Contains(page.body, `placeholder="eu-west-1a"`) || !strings.Contains(page.body, `data-zone-required hidden`) {
		t.Errorf("aws target step: zone hint or optional mark wrong")
	}

	form := wizardForm("rows")
	form.Set("step", "2")
	form.Set("action", "more_fields")
	form["field_name"] = []string{"temperature", ""}
	form["field_type"] = []string{"float", "float"}
	r := c.post("/platforms/new", form)
	names := regexp.MustCompile(`name="field_name" value="([^"]*)" placeholder="([^"]*)"`).FindAllStringSubmatch(r.body, -1)
	if len(names) != 3 {
		t.Fatalf("after adding a field with one blank row: %d rows, want 3 (one more)", len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n[2]] {
			t.Errorf("placeholder %q used twice", n[2])
		}
		seen[n[2]] = true
	}
	form.Set("action", "remove_field:0")
	form["field_name"] = []string{"temperature", "humidity", ""}
	form["field_type"] = []string{"float", "int", "float"}
	r = c.post("/platforms/new", form)
	names = regexp.MustCompile(`name="field_name" value="([^"]*)"`).FindAllStringSubmatch(r.body, -1)
	if len(names) != 2 || names[0][1] != "humidity" || !strings.Contains(r.body, `<option selected>int</option>`) {
		t.Errorf("after removing the first field: %v", names)
	}
}

// TestImportPageStartsEmpty: the import page's example is a placeholder to
// paste over, not a document to delete first.
func TestImportPageStartsEmpty(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	page := c.get("/platforms/import")
	m := regexp.MustCompile(`(?s)<textarea id="f-document"[^>]*placeholder="([^"]*)"[^>]*>(.*?)</textarea>`).FindStringSubmatch(page.body)
	if m == nil || !strings.Contains(m[1], "apiVersion: myt/v1") || strings.TrimSpace(m[2]) != "" {
		t.Errorf("import textarea: %q", m)
	}
}

// TestNewTokenShowsTheShellLines: the hint under a new token is the
// lines to paste, with this server's address and the token itself.
func TestNewTokenShowsTheShellLines(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/tokens")
	r := c.post("/tokens", url.Values{"name": {"laptop"}, "ttl": {"90d"}})
	body := html.UnescapeString(r.body)
	if !strings.Contains(body, "export MYT_SERVER="+e.srv.URL+"\nexport MYT_TOKEN=mytt_") || strings.Contains(body, "MYT_SERVER=…") {
		t.Errorf("token hint:\n%s", body)
	}
}
