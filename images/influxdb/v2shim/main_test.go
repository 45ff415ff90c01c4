package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	files := map[string]string{"/run/secrets/tok": "file-token\n"}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, errors.New("no such file")
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		token   string
		wantErr bool
	}{
		{"token from file", map[string]string{"DOCKER_INFLUXDB_INIT_MODE": "setup", "DOCKER_INFLUXDB_INIT_BUCKET": "b", "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE": "/run/secrets/tok"}, "file-token", false},
		{"token from env", map[string]string{"DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": "t"}, "t", false},
		{"no token", map[string]string{"DOCKER_INFLUXDB_INIT_MODE": "setup", "DOCKER_INFLUXDB_INIT_BUCKET": "b"}, "", true},
		{"setup without bucket", map[string]string{"DOCKER_INFLUXDB_INIT_MODE": "setup", "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": "t"}, "", true},
		{"unreadable file", map[string]string{"DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE": "/nope"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configFromEnv(func(k string) string { return tc.env[k] }, read)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && c.token != tc.token {
				t.Errorf("token = %q, want %q", c.token, tc.token)
			}
		})
	}
}

func TestHandlerTranslatesV2Write(t *testing.T) {
	var got *http.Request
	var body string
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer inner.Close()
	u, _ := url.Parse(inner.URL)
	h := handler(config{org: "myt", token: "tok"}, u)

	do := func(path, auth string) int {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("m v=1 1\n"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/api/v2/write?org=myt&bucket=b&precision=ms", "Token wrong", http.StatusUnauthorized},
		{"/api/v2/write?org=myt&bucket=b&precision=ms", "", http.StatusUnauthorized},
		{"/api/v2/write?org=other&bucket=b", "Token tok", http.StatusNotFound},
		{"/api/v2/write?org=myt", "Token tok", http.StatusBadRequest},
		{"/api/v2/write?org=myt&bucket=b&precision=hours", "Token tok", http.StatusBadRequest},
		{"/api/v2/query?org=myt", "Token tok", http.StatusNotFound},
	} {
		got = nil
		if code := do(tc.path, tc.auth); code != tc.want || got != nil {
			t.Errorf("POST %s (%q): %d (forwarded: %v), want %d and nothing forwarded", tc.path, tc.auth, code, got != nil, tc.want)
		}
	}
	if code := do("/api/v2/write?org=myt&bucket=b&precision=us", "Token tok"); code != http.StatusNoContent {
		t.Fatalf("write: %d", code)
	}
	if got.URL.Path != "/write" || got.URL.Query().Get("db") != "b" || got.URL.Query().Get("precision") != "u" || body != "m v=1 1\n" {
		t.Errorf("forwarded %s %q body %q, want /write?db=b&precision=u with the body", got.URL.Path, got.URL.RawQuery, body)
	}
	if got.Header.Get("Authorization") != "" {
		t.Error("the token was forwarded to influxd")
	}
}

// TestReadToken: `influx auth create --read-bucket` makes a token that
// reads (SELECT, SHOW on /query, GET or form POST) and writes nothing; no
// other permission can be asked for.
func TestReadToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), readTokensFile)
	var out strings.Builder
	if code := authCreate([]string{"--org", "myt", "--read-bucket", "b1", "--description", "grafana", "--json"}, file, &out); code != 0 {
		t.Fatalf("auth create: %d", code)
	}
	var answer struct{ Token string }
	if err := json.Unmarshal([]byte(out.String()), &answer); err != nil || len(answer.Token) != 64 {
		t.Fatalf("auth create printed %q: %v", out.String(), err)
	}
	for _, bad := range [][]string{{"--write-bucket", "b1"}, {"--all-access"}, {"--operator"}, {"--json"}} {
		if code := authCreate(bad, file, io.Discard); code == 0 {
			t.Errorf("auth create %v succeeded", bad)
		}
	}
	saved, _ := os.ReadFile(file)
	forwarded := 0
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && !strings.Contains(string(b), "q=") {
			t.Errorf("form body lost on the way: %q", b)
		}
		forwarded++
		w.WriteHeader(http.StatusOK)
	}))
	defer inner.Close()
	u, _ := url.Parse(inner.URL)
	h := handler(config{org: "myt", token: "admin", readTokens: strings.Fields(string(saved))}, u)
	for _, tc := range []struct {
		method, path, form string
		want               int
	}{
		{http.MethodGet, "/query?db=myt&q=" + url.QueryEscape("SELECT * FROM m"), "", http.StatusOK},
		{http.MethodPost, "/query?db=myt", "q=" + url.QueryEscape("SHOW MEASUREMENTS"), http.StatusOK},
		{http.MethodPost, "/query?db=myt", "q=" + url.QueryEscape("DROP MEASUREMENT m"), http.StatusUnauthorized},
		{http.MethodPost, "/query?db=myt", "q=" + url.QueryEscape("SELECT * INTO x FROM m"), http.StatusUnauthorized},
		{http.MethodGet, "/query?db=myt&q=" + url.QueryEscape("SELECT 1; DELETE FROM m"), "", http.StatusUnauthorized},
		{http.MethodPost, "/write?db=myt", "m v=1", http.StatusUnauthorized},
		{http.MethodPost, "/api/v2/write?org=myt&bucket=myt", "m v=1", http.StatusUnauthorized},
	} {
		forwarded = 0
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.form))
		if tc.form != "" && strings.HasPrefix(tc.form, "q=") {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Authorization", "Token "+answer.Token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || (forwarded == 1) != (tc.want == http.StatusOK) {
			t.Errorf("%s %s %q with the read token: %d (forwarded %d), want %d", tc.method, tc.path, tc.form, rec.Code, forwarded, tc.want)
		}
	}
}
