package main

import (
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/httpapi"
)

// TestServeSMTPSettings: bad SMTP settings are refused at start, naming
// the flag; with a real SMTP relay (aiosmtpd, plain on this machine), an
// email channel created through serve's API gets a test email.
func TestServeSMTPSettings(t *testing.T) {
	base := func() serveConfig {
		return serveConfig{Data: filepath.Join(t.TempDir(), "d"), LogFormat: "text", LogLevel: "info", TokenTTL: time.Hour}
	}
	for _, c := range []struct {
		edit func(*serveConfig)
		flag string
	}{
		{func(c *serveConfig) {
			c.SMTP.Host, c.SMTP.Mode, c.SMTP.From = "smtp.example.com", "ssl", "myt@example.com"
		}, "--smtp-mode"},
		{func(c *serveConfig) { c.SMTP.Host = "smtp.example.com" }, "--smtp-from"},
		{func(c *serveConfig) { c.SMTP.From = "myt@example.com" }, "--smtp-host"},
		{func(c *serveConfig) {
			c.SMTP.Host, c.SMTP.From, c.SMTP.User, c.SMTPPasswordFile = "smtp.example.com", "myt@example.com", "u", filepath.Join(t.TempDir(), "none")
		}, "--smtp-password-file"},
	} {
		cfg := base()
		c.edit(&cfg)
		err := runServe(context.Background(), cfg, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v, want an error naming %s", cfg.SMTP, err, c.flag)
		}
	}

	py := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no python3 with aiosmtpd: apt-get install python3-aiosmtpd")
		}
		t.Skip("SKIPPED the real SMTP part: no python3 with aiosmtpd (apt-get install python3-aiosmtpd)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	maildir := filepath.Join(t.TempDir(), "mail")
	smtpd := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:"+strconv.Itoa(port), "-c", "aiosmtpd.handlers.Mailbox", maildir)
	if err := smtpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpd.Process.Kill(); smtpd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("aiosmtpd did not listen in 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	cfg := base()
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.Mode, cfg.SMTP.From = "127.0.0.1", port, "none", "MyT <alerts@myt.example>"
	url := startServe(t, cfg)
	ctx := context.Background()
	res, err := httpapi.NewClient(url, "").Setup(ctx, "ada", "correct horse battery", "test")
	if err != nil {
		t.Fatal(err)
	}
	cl := httpapi.NewClient(url, res.Token)
	p, err := cl.CreatePlatform(ctx, []byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: shed}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n"))
	if err != nil {
		t.Fatal(err)
	}
	chans := "/api/v1/platforms/" + strconv.FormatInt(p.ID, 10) + "/alerts/channels"
	var ch struct{ ID int64 }
	if err := cl.Raw(ctx, "POST", chans, []byte(`{"name":"on-call","kind":"email","to":["ops@example.com"]}`), "application/json", &ch); err != nil {
		t.Fatal(err)
	}
	var sent httpapi.AlertTestResponse
	if err := cl.Raw(ctx, "POST", chans+"/"+strconv.FormatInt(ch.ID, 10)+"/test", nil, "", &sent); err != nil {
		t.Fatal(err)
	}
	if !sent.Delivered {
		t.Fatalf("test email: %+v", sent)
	}
	// The web UI has the platform's alerts page too, knowing the relay.
	jar, _ := cookiejar.New(nil)
	web := &http.Client{Jar: jar}
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page(web.Get(url + "/login")))
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	page(web.PostForm(url+"/login", neturl.Values{"csrf": {html.UnescapeString(m[1])}, "username": {"ada"}, "password": {"correct horse battery"}}))
	alerts := page(web.Get(url + "/platforms/" + strconv.FormatInt(p.ID, 10) + "/alerts"))
	if !strings.Contains(alerts, "Add an email channel") || !strings.Contains(alerts, "ops@example.com") || strings.Contains(alerts, "no SMTP relay") {
		t.Errorf("serve's alerts page:\n%s", alerts)
	}
	files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
	if len(files) != 1 {
		t.Fatalf("%d messages in the relay's maildir, want 1", len(files))
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "Subject: [MyT] shed: test notification") || !strings.Contains(string(b), "To: ops@example.com") {
		t.Errorf("the message:\n%s", b)
	}
}
