package alert_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
)

// smtpd is a real SMTP server (aiosmtpd, testdata/smtpd.py) that keeps
// every message it accepts.
type smtpd struct {
	port   int
	dir    string
	roots  *x509.CertPool
	user   string
	passwd string
}

// python3 finds a python3 that has aiosmtpd (Debian's python3-aiosmtpd
// is in /usr/bin, which another python3 on PATH may shadow). Outside CI
// a missing one skips the test; under CI=true it fails it.
func python3(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			return p
		}
	}
	msg := "no python3 with aiosmtpd: apt-get install python3-aiosmtpd (scripts/test does under CI)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: " + msg)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// startSMTPD starts aiosmtpd in mode none, starttls or tls (the last two
// with AUTH required, as alice / the password below).
func startSMTPD(t *testing.T, mode string) *smtpd {
	t.Helper()
	py := python3(t)
	d := &smtpd{port: freePort(t), dir: t.TempDir(), user: "alice", passwd: "s3cr3t-smtp-pass"}
	args := []string{"-W", "ignore", filepath.Join("testdata", "smtpd.py"), strconv.Itoa(d.port), d.dir, mode}
	if mode != "none" {
		cert, key, roots := selfSigned(t, t.TempDir())
		d.roots = roots
		args = append(args, cert, key, d.user, d.passwd)
	}
	cmd := exec.Command(py, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr // its log, shown when the test fails
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("smtpd (%s) log:\n%s", mode, stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "READY") {
			t.Fatalf("smtpd did not start: %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("smtpd did not start in 20 s")
	}
	return d
}

// relay is the engine's SMTP settings for this server.
func (d *smtpd) relay(mode string) *alert.SMTP {
	s := &alert.SMTP{Host: "127.0.0.1", Port: d.port, Mode: mode, From: "MyT <alerts@myt.example>"}
	if mode != alert.SMTPNone {
		s.User, s.Password = d.user, d.passwd
		s.TLS = &tls.Config{RootCAs: d.roots}
	}
	if err := s.Check(); err != nil {
		panic(err)
	}
	return s
}

// email is a message the server accepted, decoded.
type email struct {
	From, Subject, Body string
	To                  []string
	Header              mail.Header
}

func (d *smtpd) messages(t *testing.T) []email {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(d.dir, "*.json"))
	slices.Sort(names)
	var out []email
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			From string   `json:"from"`
			To   []string `json:"to"`
			Data string   `json:"data"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(raw.Data))
		if err != nil {
			t.Fatalf("message %s: %v", n, err)
		}
		subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, email{From: raw.From, To: raw.To, Subject: subj, Body: string(body), Header: m.Header})
	}
	return out
}

func subjects(ms []email) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Subject)
	}
	return s
}

// TestEmailOnePerStateChange: an email channel beside the webhook, over
// STARTTLS with AUTH to a real SMTP server: the database down 2 minutes
// sends exactly one email saying platform, rule and FIRING, staying down
// sends no more, and back up one "resolved"; both deliveries are in the
// history.
func TestEmailOnePerStateChange(t *testing.T) {
	srv := startSMTPD(t, alert.SMTPStartTLS)
	f := newFixture(t)
	ch, err := f.store.AddEmailChannel(context.Background(), f.platform.ID, "on-call", []string{"ops@example.com", "lead@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e := f.engine(t, nil)
	e.SMTP = srv.relay(alert.SMTPStartTLS)
	f.polls(t, e, 10, false)
	ms := srv.messages(t)
	if got := subjects(ms); !slices.Equal(got, []string{"[MyT] shed: component-down FIRING"}) {
		t.Fatalf("emails %q, want one FIRING", got)
	}
	m := ms[0]
	if m.From != "alerts@myt.example" || !slices.Equal(m.To, []string{"ops@example.com", "lead@example.com"}) ||
		m.Header.Get("To") != "ops@example.com, lead@example.com" || !strings.Contains(m.Header.Get("From"), "alerts@myt.example") {
		t.Errorf("envelope %s → %v, headers From %q To %q", m.From, m.To, m.Header.Get("From"), m.Header.Get("To"))
	}
	for _, want := range []string{"Platform shed: rule component-down is FIRING", "threshold 0", "database: worker 1: database not reachable"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	f.polls(t, e, 3, true)
	if got := subjects(srv.messages(t)); !slices.Equal(got, []string{"[MyT] shed: component-down FIRING", "[MyT] shed: component-down resolved"}) {
		t.Fatalf("emails %q, want FIRING then resolved", got)
	}
	for _, ev := range f.events(t) {
		i := slices.IndexFunc(ev.Deliveries, func(d alert.Delivery) bool { return d.ChannelID == ch.ID })
		if i < 0 || ev.Deliveries[i].Status != alert.Delivered || ev.Deliveries[i].Attempts != 1 {
			t.Errorf("event %s: deliveries %+v, want the email delivered at the first try", ev.State, ev.Deliveries)
		}
	}
}

// TestEmailImplicitTLSAndFailures: implicit TLS (port 465 style) takes a
// test email; a wrong password fails each of the 3 tries, recorded
// without the password; STARTTLS required of a server without it, and no
// relay configured at all, fail with a reason.
func TestEmailImplicitTLSAndFailures(t *testing.T) {
	srv := startSMTPD(t, alert.SMTPTLS)
	f := newFixture(t)
	ch, err := f.store.AddEmailChannel(context.Background(), f.platform.ID, "on-call", []string{"ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	e := f.engine(t, &waits)
	e.SMTP = srv.relay(alert.SMTPTLS)
	if err := e.SendTest(context.Background(), ch); err != nil {
		t.Fatalf("test email over implicit TLS: %v", err)
	}
	if got := subjects(srv.messages(t)); !slices.Equal(got, []string{"[MyT] shed: test notification"}) {
		t.Fatalf("emails %q, want the test", got)
	}

	e.SMTP.Password = "wrong-password-xyz"
	f.polls(t, e, 5, false)
	evs := f.events(t)
	if len(evs) != 1 {
		t.Fatalf("history %+v", evs)
	}
	i := slices.IndexFunc(evs[0].Deliveries, func(d alert.Delivery) bool { return d.ChannelID == ch.ID })
	if i < 0 {
		t.Fatalf("no email delivery recorded: %+v", evs[0].Deliveries)
	}
	d := evs[0].Deliveries[i]
	if d.Status != alert.Failed || d.Attempts != 3 || !strings.Contains(d.Error, "authentication") || strings.Contains(d.Error, "wrong-password") {
		t.Errorf("delivery %+v, want failed after 3 tries on authentication, without the password", d)
	}
	if got := len(srv.messages(t)); got != 1 {
		t.Errorf("%d emails accepted, want only the test", got)
	}

	plain := startSMTPD(t, alert.SMTPNone)
	e.SMTP = plain.relay(alert.SMTPNone)
	e.SMTP.Mode = alert.SMTPStartTLS
	if err := e.SendTest(context.Background(), ch); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("STARTTLS to a server without it: %v", err)
	}
	e.SMTP.Mode = alert.SMTPNone
	if err := e.SendTest(context.Background(), ch); err != nil {
		t.Errorf("plain SMTP to a local relay: %v", err)
	}
	if got := len(plain.messages(t)); got != 1 {
		t.Errorf("plain relay got %d emails, want 1", got)
	}
	e.SMTP = nil
	if err := e.SendTest(context.Background(), ch); err == nil || !strings.Contains(err.Error(), "--smtp-host") {
		t.Errorf("no relay configured: %v", err)
	}
}

// TestEmailRecipientsChecked: an email channel needs plain addresses; the
// error names the field "to".
func TestEmailRecipientsChecked(t *testing.T) {
	f := newFixture(t)
	for _, to := range [][]string{nil, {"not an address"}, {"Ops <ops@example.com>"}, {"a@example.com\r\nBcc: x@evil.example"}} {
		_, err := f.store.AddEmailChannel(context.Background(), f.platform.ID, "x", to)
		if myt.ErrorCode(err) != myt.EINVALID || !strings.HasPrefix(myt.ErrorMessage(err), "to:") {
			t.Errorf("recipients %q: %v, want EINVALID naming to", to, err)
		}
	}
}

// TestSMTPSettingsNeverLogThePassword: the relay's settings log as
// REDACTED where the password would be.
func TestSMTPSettingsNeverLogThePassword(t *testing.T) {
	var b strings.Builder
	s := alert.SMTP{Host: "smtp.example.com", User: "alice", Password: "hunter2-smtp-pw", From: "myt@example.com"}
	slog.New(slog.NewTextHandler(&b, nil)).Info("relay", "smtp", s)
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), "REDACTED") || !strings.Contains(b.String(), "smtp.example.com") {
		t.Errorf("logged %q", b.String())
	}
	if err := s.Check(); err != nil || s.Mode != alert.SMTPStartTLS || s.Port != 587 {
		t.Errorf("defaults: %+v %v, want starttls on 587", s, err)
	}
}
