package worker

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The export token (http.exportTokenFile) reads /v1/export and nothing
// else: import and the handler refuse it, and still take the API token.
func TestExportTokenOnlyExports(t *testing.T) {
	file := filepath.Join(t.TempDir(), "export_token")
	if err := os.WriteFile(file, []byte("read-only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.HTTP.ExportTokenFile = file
	w := New(cfg, &fakeSink{stored: map[string]int{}}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(w.HTTPHandler("full"))
	defer srv.Close()
	do := func(method, path, token, body string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	line := `{"id":"a","device":"d","ts":1751328000}` + "\n"
	for _, c := range []struct {
		method, path, token, body string
		want                      int
	}{
		// Past the token check: this fake sink cannot export.
		{"GET", "/v1/export?format=csv", "read-only", "", http.StatusNotImplemented},
		{"POST", "/v1/import", "read-only", line, http.StatusUnauthorized},
		{"PUT", "/v1/handler", "read-only", "def process(m):\n    return m\n", http.StatusUnauthorized},
		{"POST", "/v1/import", "full", line, http.StatusOK},
		{"GET", "/v1/export", "wrong", "", http.StatusUnauthorized},
	} {
		if got := do(c.method, c.path, c.token, c.body); got != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.token, got, c.want)
		}
	}
}
