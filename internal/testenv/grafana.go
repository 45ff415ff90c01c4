package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Grafana is the Grafana stand-in (images/grafana): HTTPS with a
// certificate made for the test, the admin's basic auth on /api/*, and the
// datasources provisioned from Dir/provisioning. It is not Grafana: no UI,
// no queries, no plugins (docs/testing.md).
type Grafana struct {
	*Container
	URL      string // https://127.0.0.1:port
	User     string // admin
	Password string
	// Client trusts the server's certificate (CertPEM) and nothing else.
	Client  *http.Client
	CertPEM []byte
	// Dir holds what is mounted as in the platform's compose file:
	// provisioning/ (/etc/grafana/provisioning), secrets/ (/run/secrets:
	// grafana_admin_password, grafana_tls_key) and tls/server.crt
	// (/etc/myt/tls).
	Dir string
}

// GrafanaDatasource is the name of the datasource the Grafana starter
// provisions (uid "myt-test", type "prometheus").
const GrafanaDatasource = "MyT test datasource"

// Grafana starts the Grafana stand-in the way the platform's compose file
// runs Grafana (user 472:0, GF_SERVER_PROTOCOL=https, the password and key
// as files under /run/secrets) and waits until /api/health answers over
// TLS. WithMount(dir, "/etc/grafana/provisioning") replaces the
// provisioning the starter writes.
func (e *Env) Grafana(t testing.TB, opts ...Option) *Grafana {
	t.Helper()
	g := &Grafana{User: "admin", Password: randHex(12), Dir: t.TempDir()}
	certPEM, keyPEM, err := selfSigned("grafana", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	g.CertPEM = certPEM
	files := []struct {
		path  string
		data  []byte
		owned bool // a secret: readable by the container's uid 472 only
	}{
		{"secrets/grafana_admin_password", []byte(g.Password + "\n"), true},
		{"secrets/grafana_tls_key", keyPEM, true},
		{"tls/server.crt", certPEM, false},
		{"provisioning/datasources/myt-test.yaml", []byte("apiVersion: 1\ndatasources:\n  - name: " + GrafanaDatasource +
			"\n    uid: myt-test\n    type: prometheus\n    url: http://127.0.0.1:9\n    isDefault: true\n    editable: false\n"), false},
		{"provisioning/dashboards/.keep", nil, false},
	}
	for _, f := range files {
		p := filepath.Join(g.Dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if f.owned {
			mode = 0o640 // group 0, the container's gid, may read it where chown is not allowed
		}
		if err := os.WriteFile(p, f.data, mode); err != nil {
			t.Fatal(err)
		}
		if f.owned {
			_ = os.Chown(p, 472, 0)
		}
	}
	// t.TempDir is 0700: the mount points themselves must let uid 472 in.
	for _, d := range []string{"secrets", "tls", "provisioning", "provisioning/datasources", "provisioning/dashboards"} {
		if err := os.Chmod(filepath.Join(g.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := spec{service: "grafana", image: "grafana", ports: []int{3000}, user: "472:0",
		env: map[string]string{
			"GF_SECURITY_ADMIN_USER":           g.User,
			"GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/grafana_admin_password",
			"GF_SERVER_PROTOCOL":               "https",
			"GF_SERVER_HTTP_PORT":              "3000",
			"GF_SERVER_CERT_FILE":              "/etc/myt/tls/server.crt",
			"GF_SERVER_CERT_KEY":               "/run/secrets/grafana_tls_key",
		}}.with(opts)
	mounts := map[string]string{
		"/run/secrets":              filepath.Join(g.Dir, "secrets"),
		"/etc/myt/tls":              filepath.Join(g.Dir, "tls"),
		"/etc/grafana/provisioning": filepath.Join(g.Dir, "provisioning"),
	}
	for _, m := range s.mounts {
		delete(mounts, m.dst)
	}
	for _, dst := range []string{"/run/secrets", "/etc/myt/tls", "/etc/grafana/provisioning"} {
		if src, ok := mounts[dst]; ok {
			s.mounts = append(s.mounts, mount{src: src, dst: dst})
		}
	}
	g.Container = e.run(t, s)
	g.URL = "https://" + hostPort(g.HostPort(3000))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	g.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	g.ready = func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/api/health", nil)
		if err != nil {
			return err
		}
		resp, err := g.Client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/api/health: %s %s", resp.Status, body)
		}
		return nil
	}
	g.wait(t)
	return g
}

// selfSigned makes a self-signed ECDSA certificate for the given DNS names
// and IP addresses, valid for a day, and its PKCS#8 key, both PEM.
func selfSigned(names ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), nil
}
