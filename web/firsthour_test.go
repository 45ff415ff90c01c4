package web_test

import (
	"html"
	"net/http"
	"os"
	"os/exec"
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
