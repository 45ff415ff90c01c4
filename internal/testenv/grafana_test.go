package testenv_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/internal/testenv"
)

// TestGrafana: the stand-in serves /api/health over TLS with the test's
// certificate, wants the admin's password (read from its file) on the rest
// of /api, and lists the datasource provisioned through the mounted
// directory; the compose healthcheck's curl works inside.
func TestGrafana(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	g := e.Grafana(t)
	get := func(c *http.Client, path, user, pass string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if !strings.HasPrefix(g.URL, "https://127.0.0.1:") {
		t.Errorf("URL = %s, want https on loopback", g.URL)
	}
	// g.Client trusts only the certificate the starter mounted: a
	// verified handshake shows the server uses that certificate.
	if code, body := get(g.Client, "/api/health", "", ""); code != http.StatusOK || body != `{"database":"ok","version":"standin"}` {
		t.Errorf("health: %d %s", code, body)
	}
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(g.URL + "/api/health"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("health with the system's roots: err = %v, want a certificate error", err)
	}
	for _, auth := range [][2]string{{"", ""}, {g.User, "wrong"}, {"root", g.Password}} {
		if code, _ := get(g.Client, "/api/datasources", auth[0], auth[1]); code != http.StatusUnauthorized {
			t.Errorf("datasources as %q/%q: %d, want 401", auth[0], auth[1], code)
		}
	}
	code, body := get(g.Client, "/api/datasources", g.User, g.Password)
	var ds []struct {
		Name, UID, Type string
		ReadOnly        bool
	}
	if err := json.Unmarshal([]byte(body), &ds); code != http.StatusOK || err != nil {
		t.Fatalf("datasources: %d %s (%v)", code, body, err)
	}
	if len(ds) != 1 || ds[0].Name != testenv.GrafanaDatasource || ds[0].UID != "myt-test" || ds[0].Type != "prometheus" || !ds[0].ReadOnly {
		t.Errorf("datasources = %+v, want the provisioned %q", ds, testenv.GrafanaDatasource)
	}
	if out := e.Docker(t, "exec", g.ID, "curl", "-fsk", "https://127.0.0.1:3000/api/health"); !strings.Contains(out, `"database":"ok"`) {
		t.Errorf("the compose healthcheck printed %q", out)
	}
	if out := e.Docker(t, "exec", g.ID, "id", "-u"); strings.TrimSpace(out) != "472" {
		t.Errorf("runs as uid %q, want 472", out)
	}
}

// TestGrafanaRefusesMissingFiles: without its certificate or password file
// the stand-in exits at once with a line naming the variable and the file.
func TestGrafanaRefusesMissingFiles(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	testenv.Need(t, "image grafana", e.Image("grafana") != "", "scripts/testenv up did not build it")
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"certificate", []string{"GF_SERVER_PROTOCOL=https", "GF_SERVER_CERT_FILE=/etc/myt/tls/server.crt", "GF_SERVER_CERT_KEY=/run/secrets/grafana_tls_key"},
			"refusing to start: GF_SERVER_CERT_FILE=/etc/myt/tls/server.crt: no such file or directory"},
		{"password", []string{"GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/grafana_admin_password"},
			"refusing to start: GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/grafana_admin_password: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := []string{"run", "--rm", "--user", "472:0", "--label", "myt-testenv.pid=" + strconv.Itoa(os.Getpid())}
			for _, kv := range tc.env {
				args = append(args, "-e", kv)
			}
			out, err := e.DockerCmd(c, append(args, e.Image("grafana"))...).CombinedOutput()
			if err == nil {
				t.Fatalf("the stand-in started without its %s file:\n%s", tc.name, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}
