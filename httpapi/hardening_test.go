package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/internal/hostile"
)

// TestHostileAPI sends every hostile document to each API path that parses
// what a signed-in user sends: the design (validate and create), a JSON
// request body, and a credential whose secret is itself JSON (a GCP service
// account). Each is refused with a 4xx, quickly and in bounded memory.
func TestHostileAPI(t *testing.T) {
	e := newEnv(t, nil)
	ada, _, _ := e.setup()
	paths := []struct {
		name, method, path string
		body               func(data []byte) string
	}{
		{"API POST /designs/validate", "POST", "/api/v1/designs/validate", func(d []byte) string { return string(d) }},
		{"API POST /platforms", "POST", "/api/v1/platforms", func(d []byte) string { return string(d) }},
		{"API JSON body (POST /tokens)", "POST", "/api/v1/tokens", func(d []byte) string { return string(d) }},
		{"API credential secret (gcp)", "POST", "/api/v1/credentials", func(d []byte) string {
			b, _ := json.Marshal(httpapi.CredentialRequest{Name: "g", Kind: "gcp", Public: map[string]string{"project_id": "my-project"}, Secret: map[string]string{"service_account_json": string(d)}})
			return string(b)
		}},
	}
	for _, p := range paths {
		hostile.Run(t, p.name, func(t *testing.T, data []byte) {
			status, body := e.call(p.method, p.path, ada, p.body(data))
			if status < 400 || status >= 500 {
				t.Errorf("%s %s: %d %v, want a 4xx refusal", p.method, p.path, status, body)
			}
		})
	}
}

// TestOversizedBodyIs413: a body over the limit is "413 Request Entity Too
// Large" with the too_large code, not a 400 that blames its content.
func TestOversizedBodyIs413(t *testing.T) {
	e := newEnv(t, nil)
	ada, _, _ := e.setup()
	for _, tc := range []struct {
		name, path, body string
	}{
		{"body over MaxBodyBytes", "/api/v1/designs/validate", "a: " + strings.Repeat("x", httpapi.MaxBodyBytes+1)},
		{"design over its own limit", "/api/v1/designs/validate", "a: " + strings.Repeat("x", (httpapi.MaxBodyBytes*3)/4)},
		{"JSON body over MaxBodyBytes", "/api/v1/tokens", `{"name": "` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`},
	} {
		status, body := e.call("POST", tc.path, ada, tc.body)
		if status != http.StatusRequestEntityTooLarge || body["error"].(map[string]any)["code"] != myt.ETOOLARGE {
			t.Errorf("%s: %d %v, want 413 too_large", tc.name, status, body)
		}
	}
}
