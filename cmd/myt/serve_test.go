package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startServe runs `myt serve` with cfg on a free port of 127.0.0.1 and
// returns its base URL, read off its log; the server stops at cleanup.
func startServe(t *testing.T, cfg serveConfig) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.LogFormat == "" {
		cfg.LogFormat, cfg.LogLevel = "text", "info"
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, cfg, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="myt serving".* url=(\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case u := <-urls:
		return u
	case err := <-done:
		t.Fatalf("serve ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start in 30 s")
	}
	return ""
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func get(t *testing.T, c *http.Client, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestServeTLSSendsHSTS: over TLS every answer tells the browser to use
// HTTPS from now on; over plain HTTP none does (it would be ignored, and
// a proxy that terminates TLS sends its own).
func TestServeTLSSendsHSTS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	u := startServe(t, serveConfig{Data: filepath.Join(dir, "data"), TLSCert: cert, TLSKey: key})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, path := range []string{"/healthz", "/login", "/api/v1/status"} {
		if h := get(t, c, u+path, "").Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
			t.Errorf("GET %s over TLS: Strict-Transport-Security %q", path, h)
		}
	}
	plain := startServe(t, serveConfig{Data: filepath.Join(dir, "data2")})
	if h := get(t, http.DefaultClient, plain+"/healthz", "").Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("over plain HTTP: Strict-Transport-Security %q", h)
	}
}

// TestMetricsToken: with a metrics token, /metrics answers only a request
// that carries it.
func TestMetricsToken(t *testing.T) {
	dir := t.TempDir()
	u := startServe(t, serveConfig{Data: filepath.Join(dir, "data"), MetricsToken: "s3cret-metrics-token-0123456789"})
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"s3cret-metrics-token-0123456789", http.StatusOK}} {
		if resp := get(t, http.DefaultClient, u+"/metrics", tc.token); resp.StatusCode != tc.want {
			t.Errorf("/metrics with token %q: %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
	open := startServe(t, serveConfig{Data: filepath.Join(dir, "data2")})
	if resp := get(t, http.DefaultClient, open+"/metrics", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics without a configured token: %d", resp.StatusCode)
	}
}

// TestDataDirIsTightened: a data dir others can read is made 0700 at
// start-up.
func TestDataDirIsTightened(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755) // past the umask
	startServe(t, serveConfig{Data: data})
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("data dir mode %04o after start-up, want 0700", perm)
	}
}
