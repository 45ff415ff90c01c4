package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// The operational endpoints of a real `myt serve`.
func TestServerEndpoints(t *testing.T) {
	srv := startServer(t)
	if code, body, _ := get(t, srv.URL+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body, _ := get(t, srv.URL+"/api/v1/status")
	var st struct{ NeedsSetup bool }
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || !st.NeedsSetup {
		t.Errorf("/api/v1/status on a fresh server: %d %s", code, body)
	}
	if code, body, _ := get(t, srv.URL+"/api/v1/openapi.json"); code != 200 || !strings.Contains(body, `"openapi": "3.1.0"`) {
		t.Errorf("openapi: %d", code)
	}
	// A fresh server sends every page to first-run setup.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.Contains(loc, "/setup") {
		t.Errorf("/ on a fresh server: %d → %q, want a redirect to /setup", resp.StatusCode, loc)
	}
	// /metrics counts the API requests made above.
	code, body, _ = get(t, srv.URL+"/metrics")
	if code != 200 || !strings.Contains(body, `myt_api_requests_total{route="GET /api/v1/status",status="200"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d\n%.2000s", code, body)
	}
	// A second server on the same data dir is refused: it holds a lock.
	r := runCLI(t, nil, "", "serve", "--addr", "127.0.0.1:0", "--data", srv.Data)
	if r.Code == 0 || !strings.Contains(r.Stderr, "is using") {
		t.Errorf("second serve on the same data dir: exit %d, %s", r.Code, r.Stderr)
	}
}
