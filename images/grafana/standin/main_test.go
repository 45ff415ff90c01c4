package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	files := map[string]string{"/run/secrets/pw": "s3cret\n\n"}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
	}
	https := map[string]string{"GF_SERVER_PROTOCOL": "https", "GF_SERVER_CERT_FILE": "/c", "GF_SERVER_CERT_KEY": "/k"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range https {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		password string
		addr     string
		err      string // substring of the error, "" for none
	}{
		{"defaults", nil, "admin", ":3000", ""},
		{"password file, port", with(map[string]string{"GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/pw", "GF_SERVER_HTTP_PORT": "3443"}), "s3cret", ":3443", ""},
		{"missing password file", with(map[string]string{"GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/absent"}), "", "", "GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/absent: file does not exist"},
		{"https without key", map[string]string{"GF_SERVER_PROTOCOL": "https", "GF_SERVER_CERT_FILE": "/c"}, "", "", "needs GF_SERVER_CERT_FILE and GF_SERVER_CERT_KEY"},
		{"h2 protocol", map[string]string{"GF_SERVER_PROTOCOL": "h2"}, "", "", "http or https only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configFromEnv(func(k string) string { return tc.env[k] }, read)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.password != tc.password || c.addr != tc.addr || c.user != "admin" {
				t.Errorf("user %q password %q addr %q, want admin %q %q", c.user, c.password, c.addr, tc.password, tc.addr)
			}
		})
	}
}

func TestCheckRefusesMissingCertificate(t *testing.T) {
	dir := t.TempDir()
	c := config{protocol: "https", certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "key"), dataDir: dir}
	err := c.check()
	if err == nil || !strings.Contains(err.Error(), "GF_SERVER_CERT_FILE="+c.certFile+": no such file or directory") {
		t.Errorf("check() = %v, want the missing certificate named", err)
	}
	c = config{protocol: "http", dataDir: filepath.Join(dir, "absent")}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "is not writable") {
		t.Errorf("check() with a missing data dir = %v", err)
	}
}

// writeTree writes files (path relative to root -> content).
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, v := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProvisionAndAPI(t *testing.T) {
	root := t.TempDir()
	dashDir := filepath.Join(root, "dashboards-json")
	writeTree(t, root, map[string]string{
		"secrets/db_password": "pw\n",
		"prov/datasources/myt.yaml": `apiVersion: 1
datasources:
  - name: MyT TimescaleDB
    uid: myt-db
    type: grafana-postgresql-datasource
    url: timescaledb:5432
    user: myt
    isDefault: true
    editable: false
    jsonData: {database: myt, sslmode: disable}
    secureJsonData:
      password: $__file{` + filepath.Join(root, "secrets/db_password") + `}
`,
		"prov/dashboards/myt.yaml":    "apiVersion: 1\nproviders:\n  - name: myt\n    folder: MyT\n    type: file\n    options:\n      path: " + dashDir + "\n",
		"dashboards-json/myt.json":    `{"uid": "myt-overview", "title": "MyT"}`,
		"dashboards-json/broken.json": `{`,
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prov, err := provision(filepath.Join(root, "prov"), os.Getenv, os.ReadFile, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler(config{user: "admin", password: "pw1"}, prov))
	defer srv.Close()
	get := func(path, user, pass string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/health", "", ""); code != 200 || strings.TrimSpace(body) != `{"database":"ok","version":"standin"}` {
		t.Errorf("health: %d %s", code, body)
	}
	for _, auth := range [][2]string{{"", ""}, {"admin", "wrong"}, {"other", "pw1"}} {
		if code, _ := get("/api/datasources", auth[0], auth[1]); code != http.StatusUnauthorized {
			t.Errorf("datasources as %q/%q: %d, want 401", auth[0], auth[1], code)
		}
	}
	code, body := get("/api/datasources", "admin", "pw1")
	var dss []map[string]any
	if err := json.Unmarshal([]byte(body), &dss); code != 200 || err != nil || len(dss) != 1 {
		t.Fatalf("datasources: %d %s", code, body)
	}
	ds := dss[0]
	if ds["uid"] != "myt-db" || ds["url"] != "timescaledb:5432" || ds["readOnly"] != true || ds["isDefault"] != true ||
		ds["jsonData"].(map[string]any)["database"] != "myt" || ds["secureJsonFields"].(map[string]any)["password"] != true {
		t.Errorf("datasource = %v", ds)
	}
	if strings.Contains(body, `"pw"`) || strings.Contains(body, "$__file") {
		t.Errorf("datasource listing shows the secret: %s", body)
	}
	if code, body := get("/api/search", "admin", "pw1"); code != 200 || !strings.Contains(body, `"uid":"myt-overview"`) || !strings.Contains(body, `"folderTitle":"MyT"`) {
		t.Errorf("search: %d %s", code, body)
	}
	if code, _ := get("/api/datasources/uid/nope", "admin", "pw1"); code != 404 {
		t.Errorf("unknown datasource: %d, want 404", code)
	}
}

func TestProvisionRefusesMissingSecret(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"datasources/a.yaml": "datasources:\n  - name: A\n    secureJsonData:\n      password: $__file{/run/secrets/absent}\n"})
	_, err := provision(root, os.Getenv, os.ReadFile, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), `datasource "A"`) || !strings.Contains(err.Error(), "$__file{/run/secrets/absent}") {
		t.Errorf("provision = %v, want the unreadable secret named", err)
	}
	writeTree(t, root, map[string]string{"datasources/a.yaml": "datasources:\n  - name: A\n    isDefault: true\n  - name: B\n    isDefault: true\n"})
	if _, err := provision(root, os.Getenv, os.ReadFile, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("two default datasources accepted")
	}
}
