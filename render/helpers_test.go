package render_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
)

// need is testenv.Need: skip loudly outside CI, fail under CI=true.
var need = testenv.Need

// needTool returns the path of the first of names found on PATH.
func needTool(t *testing.T, why string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	need(t, strings.Join(names, " or "), false, why)
	return ""
}

// fakeSecrets is a deterministic SecretSource: each value is derived from
// the name, so golden files are stable and leaks are easy to search for.
type fakeSecrets struct{}

func (fakeSecrets) Secret(_ context.Context, name string) (string, error) {
	sum := sha256.Sum256([]byte("test secret " + name))
	return "S" + hex.EncodeToString(sum[:])[:31], nil
}

var testNow = time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)

// designCase is a design in testdata/designs.
type designCase struct {
	name string
	d    *myt.Design
}

func designs(t *testing.T) []designCase {
	t.Helper()
	paths, err := filepath.Glob("testdata/designs/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test designs: %v", err)
	}
	var out []designCase
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := design.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, designCase{strings.TrimSuffix(filepath.Base(p), ".yaml"), d})
	}
	return out
}

func testOptions(d *myt.Design) render.Options {
	o := render.Options{Secrets: fakeSecrets{}, Now: func() time.Time { return testNow }, WorkerImageTag: "test"}
	if d.Spec.Target.Provider == myt.ProviderSSH {
		o.SSH = render.SSHTarget{Host: "192.0.2.50", Port: 2222, User: "admin"}
	}
	return o
}

func mustRender(t *testing.T, d *myt.Design) *render.Bundle {
	t.Helper()
	b, err := render.Render(context.Background(), d, testOptions(d))
	if err != nil {
		t.Fatalf("render %s: %v", d.Metadata.Name, err)
	}
	return b
}

// writeBundle writes b into a fresh temporary directory.
func writeBundle(t *testing.T, b *render.Bundle) string {
	t.Helper()
	dir := t.TempDir()
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// goldenText is the reviewable text form of a bundle: every file with its
// mode, PEM blocks replaced by a stable summary (key material comes from
// crypto/rand and changes on every run).
func goldenText(t *testing.T, b *render.Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, f := range b.Files {
		fmt.Fprintf(&buf, "=== %s (%04o%s) ===\n", f.Path, f.Mode, map[bool]string{true: " secret"}[f.Secret])
		data := f.Data
		if bytes.Contains(data, []byte("-----BEGIN ")) {
			data = summarizePEM(t, data)
		}
		buf.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			buf.WriteString("\n")
		}
	}
	return buf.Bytes()
}

func summarizePEM(t *testing.T, data []byte) []byte {
	var out []string
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		line := "<PEM " + blk.Type + ">"
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatalf("certificate in bundle: %v", err)
			}
			ips := make([]string, len(c.IPAddresses))
			for i, ip := range c.IPAddresses {
				ips[i] = ip.String()
			}
			line = fmt.Sprintf("<PEM CERTIFICATE subject=%q ca=%v dns=%v ip=%v notBefore=%s notAfter=%s>",
				c.Subject.CommonName, c.IsCA, c.DNSNames, ips, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// verifyServer checks that certPEM is a server certificate signed by ca and
// valid for name at time at.
func verifyServer(ca *pki.CA, certPEM []byte, name string, at time.Time) error {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return errors.New("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return fmt.Errorf("parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	_, err = c.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}
