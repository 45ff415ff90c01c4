package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
)

type env struct {
	t   *testing.T
	srv *httptest.Server
}

func newEnv(t *testing.T, guard *throttle.Guard) *env {
	return newEnvParams(t, guard, vault.Params{Time: 1, Memory: 1024, Threads: 1})
}

// newEnvParams starts the API with guard (nil: budgets too large to
// matter) and the store hashing passwords with params.
func newEnvParams(t *testing.T, guard *throttle.Guard, params vault.Params) *env {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: params})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	if guard == nil {
		guard = &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 4, Wait: 10 * time.Second}
	}
	api := httpapi.New(httpapi.Config{Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin, Login: guard})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv}
}

// call sends a raw request and returns the status and decoded body.
func (e *env) call(method, path, token string, body string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

const design = `apiVersion: myt/v1
kind: Platform
metadata: {name: greenhouse}
spec:
  target: {provider: aws, credentials: my-aws, region: eu-west-1, size: small, adminCIDRs: ["203.0.113.7/32"], deviceCIDRs: ["0.0.0.0/0"], dataVolumeGB: 20}
  database: {kind: timescaledb, fields: {temperature: float, humidity: float}}
  broker: {mqtt: true, amqp: true, tls: true, plaintext: false}
  processing: {handler: "def process(msg):\n    return msg\n"}
`

// setup creates ada (admin) and bob, each with a credential and a
// platform, and returns their tokens and object ids.
func (e *env) setup() (ada, bob string, ids map[string]int64) {
	e.t.Helper()
	ctx := context.Background()
	c := httpapi.NewClient(e.srv.URL, "")
	res, err := c.Setup(ctx, "ada", "correct horse battery", "test")
	if err != nil {
		e.t.Fatal(err)
	}
	ada = res.Token
	admin := httpapi.NewClient(e.srv.URL, ada)
	var u myt.User
	if err := admin.Raw(ctx, "POST", "/api/v1/users", []byte(`{"username":"bob","password":"correct horse battery"}`), "application/json", &u); err != nil {
		e.t.Fatal(err)
	}
	res, err = c.Login(ctx, "bob", "correct horse battery", "test")
	if err != nil {
		e.t.Fatal(err)
	}
	bob = res.Token
	ids = map[string]int64{"bobUser": u.ID}
	for who, tok := range map[string]string{"ada": ada, "bob": bob} {
		cl := httpapi.NewClient(e.srv.URL, tok)
		cred, err := cl.CreateCredential(ctx, httpapi.CredentialRequest{Name: "my-aws", Kind: "aws",
			Public: map[string]string{"access_key_id": "AKIAIOSFODNN7EXAMPLE"}, Secret: map[string]string{"secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}})
		if err != nil {
			e.t.Fatal(err)
		}
		p, err := cl.CreatePlatform(ctx, []byte(design))
		if err != nil {
			e.t.Fatal(err)
		}
		var tok2 httpapi.TokenResponse
		if err := cl.Raw(ctx, "POST", "/api/v1/tokens", []byte(`{"name":"spare"}`), "application/json", &tok2); err != nil {
			e.t.Fatal(err)
		}
		ids[who+"Cred"], ids[who+"Platform"], ids[who+"Token"] = cred.ID, p.ID, tok2.Session.ID
	}
	var inv myt.Invite
	if err := admin.Raw(ctx, "POST", "/api/v1/invites", []byte(`{}`), "application/json", &inv); err != nil {
		e.t.Fatal(err)
	}
	ids["adaInvite"] = inv.ID
	return ada, bob, ids
}

// Every route but the public ones answers 401 without a token, and with a
// bad one.
func TestEveryRouteNeedsAuth(t *testing.T) {
	e := newEnv(t, nil)
	for _, rt := range httpapi.Routes() {
		if slices.Contains(httpapi.PublicRoutes(), rt) {
			continue
		}
		method, path, _ := strings.Cut(rt, " ")
		path = strings.ReplaceAll(path, "{id}", "1")
		for _, token := range []string{"", "mytt_forged"} {
			status, body := e.call(method, path, token, "{}")
			if status != http.StatusUnauthorized {
				t.Errorf("%s with token %q: %d, want 401", rt, token, status)
				continue
			}
			if code := body["error"].(map[string]any)["code"]; code != "unauthorized" {
				t.Errorf("%s: error code %v", rt, code)
			}
		}
	}
}

// Every route with an {id} answers 404 when the id is another user's
// object, and that object is unchanged afterwards.
func TestOtherUsersObjectsAre404(t *testing.T) {
	e := newEnv(t, nil)
	ada, bob, ids := e.setup()
	// bob's view of ada's objects, and ada's (an admin's) view of bob's
	// credentials, tokens and platforms.
	cases := map[string][]struct {
		token string
		id    int64
	}{
		"/api/v1/credentials/{id}": {{bob, ids["adaCred"]}, {ada, ids["bobCred"]}},
		"/api/v1/platforms/{id}":   {{bob, ids["adaPlatform"]}, {ada, ids["bobPlatform"]}},
		"/api/v1/tokens/{id}":      {{bob, ids["adaToken"]}, {ada, ids["bobToken"]}},
	}
	bodies := map[string]string{"PUT /api/v1/platforms/{id}": design}
	tested := 0
	for _, rt := range httpapi.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		for _, c := range cases[path] {
			p := strings.ReplaceAll(path, "{id}", itoa(c.id))
			body := bodies[rt]
			if body == "" {
				body = "{}"
			}
			status, _ := e.call(method, p, c.token, body)
			if status != http.StatusNotFound {
				t.Errorf("%s %s as another user: %d, want 404", method, p, status)
			}
			tested++
		}
	}
	if tested < 10 {
		t.Fatalf("only %d cross-user requests made: the route table changed?", tested)
	}
	// Admin-only routes: bob (not an admin) is refused, whoever's id.
	for _, rt := range []string{"GET /api/v1/users", "GET /api/v1/users/{id}", "PATCH /api/v1/users/{id}", "POST /api/v1/users/{id}/password", "PUT /api/v1/settings", "GET /api/v1/invites", "POST /api/v1/invites", "DELETE /api/v1/invites/{id}", "POST /api/v1/users"} {
		method, path, _ := strings.Cut(rt, " ")
		id := ids["adaInvite"]
		if strings.Contains(path, "users/") {
			id = 1 // ada
		}
		status, _ := e.call(method, strings.ReplaceAll(path, "{id}", itoa(id)), bob, `{"password":"correct horse battery"}`)
		if status != http.StatusForbidden && status != http.StatusNotFound {
			t.Errorf("%s as a non-admin: %d, want 403 or 404", rt, status)
		}
	}
	// Nothing of ada's changed.
	for _, path := range []string{"/api/v1/credentials/" + itoa(ids["adaCred"]), "/api/v1/platforms/" + itoa(ids["adaPlatform"])} {
		if status, _ := e.call("GET", path, ada, ""); status != http.StatusOK {
			t.Errorf("ada's %s after bob's attempts: %d", path, status)
		}
	}
}

func TestSecretsNeverReturned(t *testing.T) {
	e := newEnv(t, nil)
	ada, _, ids := e.setup()
	for _, path := range []string{"/api/v1/credentials", "/api/v1/credentials/" + itoa(ids["adaCred"])} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+ada)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")) {
			t.Errorf("%s returned the secret: %s", path, b)
		}
		if !bytes.Contains(b, []byte("••••••••EKEY")) {
			t.Errorf("%s does not show the masked secret: %s", path, b)
		}
	}
}

func TestErrorsNameTheField(t *testing.T) {
	e := newEnv(t, nil)
	ada, _, _ := e.setup()
	status, body := e.call("POST", "/api/v1/credentials", ada, `{"name":"x","kind":"aws","public":{"access_key_id":"nope"},"secret":{}}`)
	if status != 400 {
		t.Fatalf("status %d", status)
	}
	fields, _ := body["error"].(map[string]any)["fields"].([]any)
	got := map[string]bool{}
	for _, f := range fields {
		got[f.(map[string]any)["field"].(string)] = true
	}
	if !got["access_key_id"] || !got["secret_access_key"] {
		t.Errorf("fields = %v", fields)
	}
	status, body = e.call("POST", "/api/v1/credentials", ada, `{"name":"x","kind":"aws","colour":"red"}`)
	if status != 400 || !strings.Contains(toJSON(body), "colour") {
		t.Errorf("unknown field: %d %v", status, body)
	}
	// Invitations are for sign-up, not for an admin creating a user: the
	// field is refused rather than silently ignored.
	status, body = e.call("POST", "/api/v1/users", ada, `{"username":"carol","password":"correct horse battery","invite":"abc"}`)
	if status != 400 || !strings.Contains(toJSON(body), `"field":"invite"`) {
		t.Errorf("user with an invite: %d %v", status, body)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/platforms", strings.NewReader(strings.Replace(design, "timescaledb", "oracle", 1)))
	req.Header.Set("Authorization", "Bearer "+ada)
	req.Header.Set("Content-Type", "application/yaml")
	resp, _ := http.DefaultClient.Do(req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !bytes.Contains(b, []byte("spec.database.kind")) {
		t.Errorf("bad design: %d %s", resp.StatusCode, b)
	}
}

func TestLoginIsRateLimited(t *testing.T) {
	e := newEnv(t, &throttle.Guard{Addr: throttle.New(5, 3), Account: throttle.New(5, 3), Slots: 2, Wait: 10 * time.Second})
	// Successful logins cost nothing: colleagues behind one address do
	// not lock each other out.
	if status, _ := e.call("POST", "/api/v1/setup", "", `{"username":"ada","password":"correct horse battery"}`); status != 201 {
		t.Fatalf("setup: %d", status)
	}
	for i := range 6 {
		if status, _ := e.call("POST", "/api/v1/login", "", `{"username":"ada","password":"correct horse battery"}`); status != 201 {
			t.Fatalf("successful login %d: %d", i+1, status)
		}
	}
	var statuses []int
	for range 5 {
		status, _ := e.call("POST", "/api/v1/login", "", `{"username":"someone","password":"wrong password"}`)
		statuses = append(statuses, status)
	}
	if !slices.Equal(statuses, []int{401, 401, 401, 429, 429}) {
		t.Errorf("statuses = %v, want three 401s then 429s", statuses)
	}
	// The address is now throttled, even for the right password.
	if status, _ := e.call("POST", "/api/v1/login", "", `{"username":"ada","password":"correct horse battery"}`); status != 429 {
		t.Errorf("right password while throttled: %d, want 429", status)
	}
}

// The OpenAPI document lists exactly the served routes, each with a
// summary.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, nil)
	status, doc := e.call("GET", "/api/v1/openapi.json", "", "")
	if status != 200 || doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %d %v", status, doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	n := 0
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			rt := strings.ToUpper(method) + " " + path
			if !slices.Contains(httpapi.Routes(), rt) {
				t.Errorf("documented but not served: %s", rt)
			}
			if op.(map[string]any)["summary"] == "" {
				t.Errorf("%s has no summary", rt)
			}
			n++
		}
	}
	if n != len(httpapi.Routes()) {
		t.Errorf("documented %d operations, serve %d", n, len(httpapi.Routes()))
	}
	// Every entry of the docs table describes a served route: OpenAPI()
	// walks the routes, so a stale entry would silently not appear.
	for _, rt := range httpapi.DocumentedRoutes() {
		if !slices.Contains(httpapi.Routes(), rt) {
			t.Errorf("docs describe %s, which is not served", rt)
		}
	}
	// Every operation names its success status.
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			responses, _ := op.(map[string]any)["responses"].(map[string]any)
			if len(responses) < 2 {
				t.Errorf("%s %s: responses %v lack a success status", method, path, responses)
			}
			for st := range responses {
				if st != "default" && (len(st) != 3 || st[0] < '1' || st[0] > '5') {
					t.Errorf("%s %s: response status %q", method, path, st)
				}
			}
		}
	}
	// Every $ref resolves under components.schemas.
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	if len(schemas) == 0 {
		t.Fatal("no components.schemas")
	}
	refs := 0
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					refs++
					ref, _ := x.(string)
					name, ok := strings.CutPrefix(ref, "#/components/schemas/")
					if _, found := schemas[name]; !ok || !found {
						t.Errorf("%s: $ref %q does not resolve under components.schemas", where, ref)
					}
					continue
				}
				walk(where+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(where+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("#", doc)
	if refs < len(httpapi.Routes()) {
		t.Errorf("found %d $refs, fewer than the %d routes (each has at least the error's)", refs, len(httpapi.Routes()))
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// The client's account calls (kept as the public Go client of their
// routes, though the CLI does not use them yet) talk to the real server.
func TestClientAccountCalls(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if st, err := httpapi.NewClient(e.srv.URL, "").Status(ctx); err != nil || !st.NeedsSetup || st.Version != myt.Version {
		t.Fatalf("Status before setup: %+v, %v", st, err)
	}
	ada, _, ids := e.setup()
	c := httpapi.NewClient(e.srv.URL, ada)
	if st, err := c.Status(ctx); err != nil || st.NeedsSetup {
		t.Errorf("Status after setup: %+v, %v", st, err)
	}
	if u, err := c.Me(ctx); err != nil || u.Username != "ada" || !u.Admin {
		t.Errorf("Me: %+v, %v", u, err)
	}
	names := func() []string {
		t.Helper()
		ts, err := c.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range ts {
			out = append(out, s.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); !slices.Equal(got, []string{"spare", "test"}) {
		t.Errorf("Tokens = %v, want spare and test", got)
	}
	if err := c.DeleteToken(ctx, ids["adaToken"]); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"test"}) {
		t.Errorf("Tokens after DeleteToken = %v, want test", got)
	}
	if err := c.DeleteToken(ctx, ids["bobToken"]); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("DeleteToken of another user's token: %v, want not found", err)
	}
}

// The document's enums list what the server really uses: the credential
// kinds it serves, and error codes that each have their own HTTP status.
func TestOpenAPIEnums(t *testing.T) {
	e := newEnv(t, nil)
	ada, _, _ := e.setup()
	_, doc := e.call("GET", "/api/v1/openapi.json", "", "")
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	enumOf := func(schema any, path ...string) []string {
		t.Helper()
		v := schema
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		slices.Sort(out)
		return out
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/credential-kinds", nil)
	req.Header.Set("Authorization", "Bearer "+ada)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []struct{ Name string }
	err = json.NewDecoder(resp.Body).Decode(&kinds)
	resp.Body.Close()
	if err != nil || len(kinds) == 0 {
		t.Fatalf("credential kinds: %v, %v", kinds, err)
	}
	var served []string
	for _, k := range kinds {
		served = append(served, k.Name)
	}
	slices.Sort(served)
	if got := enumOf(schemas["Credential"], "properties", "kind", "enum"); !slices.Equal(got, served) {
		t.Errorf("Credential.kind enum = %v, served kinds %v", got, served)
	}
	codes := enumOf(schemas["Error"], "properties", "error", "properties", "code", "enum")
	for _, c := range []string{myt.EINVALID, myt.ENOTFOUND, myt.ECONFLICT, myt.EUNAUTHORIZED, myt.EFORBIDDEN, myt.ETOOMANY, myt.EINTERNAL} {
		if !slices.Contains(codes, c) {
			t.Errorf("Error.code enum %v lacks %q", codes, c)
		}
	}
	for _, c := range codes {
		if myt.HTTPStatus(c) == http.StatusInternalServerError && c != myt.EINTERNAL {
			t.Errorf("Error.code %q has no HTTP status of its own", c)
		}
	}
}

// TestCreatePlatformReportsEveryErrorAtOnce: a design with an unknown
// field, a bad value, a credential the user lacks and a taken name gets
// all four in one answer, not one round at a time.
func TestCreatePlatformReportsEveryErrorAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	ada, _, _ := e.setup() // ada has credential my-aws and platform greenhouse
	doc := strings.NewReplacer("credentials: my-aws", "credentials: my-awz", "size: small", "size: small, colour: red", "kind: timescaledb", "kind: oracle").Replace(design)
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/platforms", strings.NewReader(doc))
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Authorization", "Bearer "+ada)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnprocessableEntity && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{"spec.target.colour", "spec.database.kind", "spec.target.credentials", "my-aws", "metadata.name"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the answer lacks %q: %s", want, body)
		}
	}
}
