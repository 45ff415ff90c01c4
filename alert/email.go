package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

// SMTP modes: how the connection to the relay is secured.
const (
	// SMTPStartTLS upgrades a plain connection with STARTTLS, and fails
	// when the server does not offer it (port 587).
	SMTPStartTLS = "starttls"
	// SMTPTLS speaks TLS from the first byte (port 465).
	SMTPTLS = "tls"
	// SMTPNone sends in clear: a relay on this machine only.
	SMTPNone = "none"
)

// SMTP is the relay that email channels are sent through: the server's
// configuration (myt serve --smtp-*), not a platform's.
type SMTP struct {
	Host string
	Port int
	// Mode is SMTPStartTLS (the default), SMTPTLS or SMTPNone.
	Mode string
	// User and Password authenticate (AUTH PLAIN) when User is set;
	// net/smtp refuses to send them over a connection without TLS unless
	// the host is this machine.
	User     string
	Password string
	// From is the sender address of every notification.
	From string
	// TLS is the client TLS configuration (nil: the system's roots,
	// checking Host); tests trust their own CA with it.
	TLS *tls.Config
	// HelloName is sent in EHLO ("localhost" when empty).
	HelloName string
}

// LogValue implements slog.LogValuer: the password is never logged.
func (s SMTP) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", s.Host), slog.Int("port", s.Port), slog.String("mode", s.Mode),
		slog.String("user", s.User), slog.String("password", "REDACTED"), slog.String("from", s.From))
}

// Check validates the settings; each error names its setting.
func (s *SMTP) Check() error {
	if s.Mode == "" {
		s.Mode = SMTPStartTLS
	}
	switch {
	case s.Host == "":
		return errors.New("smtp host: give the SMTP relay's host name")
	case s.Mode != SMTPStartTLS && s.Mode != SMTPTLS && s.Mode != SMTPNone:
		return fmt.Errorf("smtp mode %q: want starttls, tls or none", s.Mode)
	case s.Port < 0 || s.Port > 65535:
		return fmt.Errorf("smtp port %d: want 1-65535", s.Port)
	}
	if s.Port == 0 {
		s.Port = map[string]int{SMTPStartTLS: 587, SMTPTLS: 465, SMTPNone: 25}[s.Mode]
	}
	if _, err := mail.ParseAddress(s.From); err != nil || s.From == "" {
		return fmt.Errorf("smtp from %q: give the sender's address, such as myt@example.com", s.From)
	}
	if s.Password != "" && s.User == "" {
		return errors.New("smtp user: a password is set without a user")
	}
	return nil
}

// CheckRecipients validates an email channel's addresses: at least one,
// at most MaxRecipients, each a plain address (no display name). The
// error names the field "to".
func CheckRecipients(to []string) ([]string, error) {
	var out []string
	for _, a := range to {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		p, err := mail.ParseAddress(a)
		if err != nil || p.Address != a || strings.ContainsAny(a, "\r\n,;") {
			return nil, myt.Errorf(myt.EINVALID, "to: %q is not an email address (give name@example.com, one per line).", a)
		}
		out = append(out, a)
	}
	switch {
	case len(out) == 0:
		return nil, myt.Errorf(myt.EINVALID, "to: give at least one email address.")
	case len(out) > MaxRecipients:
		return nil, myt.Errorf(myt.EINVALID, "to: at most %d addresses per channel.", MaxRecipients)
	}
	return out, nil
}

// Subject is a notification email's subject: the platform, the rule and
// whether it fired or resolved.
func Subject(p Payload) string {
	switch p.State {
	case "test":
		return fmt.Sprintf("[MyT] %s: test notification", p.Platform)
	case Fired:
		return fmt.Sprintf("[MyT] %s: %s FIRING", p.Platform, p.Rule)
	}
	return fmt.Sprintf("[MyT] %s: %s resolved", p.Platform, p.Rule)
}

// headerSafe drops line breaks from a header value.
func headerSafe(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// message is the RFC 5322 message of a notification.
func (e *Engine) message(to []string, p Payload) []byte {
	from := ""
	if e.SMTP != nil {
		from = e.SMTP.From
	}
	var body bytes.Buffer
	switch p.State {
	case "test":
		fmt.Fprintf(&body, "This is a test notification from MyT for platform %s.\nAlerts of this platform will be sent to this address.\n", p.Platform)
	case Fired:
		fmt.Fprintf(&body, "Platform %s: rule %s is FIRING.\n\n", p.Platform, p.Rule)
		fmt.Fprintf(&body, "Value:      %g (threshold %g)\nSince:      %s\nDecided at: %s\n", p.Value, p.Threshold, p.Since.Format(time.RFC3339), p.At.Format(time.RFC3339))
	default:
		fmt.Fprintf(&body, "Platform %s: rule %s is resolved.\n\n", p.Platform, p.Rule)
		fmt.Fprintf(&body, "Value:      %g (threshold %g)\nClear since: %s\nDecided at: %s\n", p.Value, p.Threshold, p.Since.Format(time.RFC3339), p.At.Format(time.RFC3339))
	}
	if p.Detail != "" && p.State != "test" {
		fmt.Fprintf(&body, "Detail:     %s\n", p.Detail)
	}
	fmt.Fprintf(&body, "\n-- \nMyT alerting: one message when a rule fires and one when it resolves.\n")

	var m bytes.Buffer
	id := make([]byte, 12)
	rand.Read(id)
	host := "myt.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, h, ok := strings.Cut(a.Address, "@"); ok {
			host = h
		}
	}
	hdr := func(k, v string) { fmt.Fprintf(&m, "%s: %s\r\n", k, headerSafe(v)) }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", Subject(p)))
	hdr("Date", e.now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id)+"@"+host+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("Auto-Submitted", "auto-generated")
	hdr("X-MyT-Platform", p.Platform)
	hdr("X-MyT-State", p.State)
	m.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&m)
	qp.Write(bytes.ReplaceAll(body.Bytes(), []byte("\n"), []byte("\r\n")))
	qp.Close()
	return m.Bytes()
}

// mail sends msg to the recipients through the configured relay, once,
// within timeout. Errors never carry the password.
func (e *Engine) mail(ctx context.Context, to []string, msg []byte, timeout time.Duration) error {
	s := e.SMTP
	if s == nil || s.Host == "" {
		return errors.New("no SMTP relay is configured: start myt serve with --smtp-host and --smtp-from (docs/alert.md)")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to the SMTP relay: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	tlsConf := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	if s.TLS != nil {
		tlsConf = s.TLS.Clone()
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = s.Host
		}
	}
	if s.Mode == SMTPTLS {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS with the SMTP relay: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		return fmt.Errorf("SMTP greeting: %w", err)
	}
	defer c.Close()
	hello := s.HelloName
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", err)
	}
	if s.Mode == SMTPStartTLS || s.Mode == "" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the SMTP relay does not offer STARTTLS (set --smtp-mode tls or none if that is expected)")
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return fmt.Errorf("SMTP STARTTLS: %w", err)
		}
	}
	if s.User != "" {
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, s.Host)); err != nil {
			return fmt.Errorf("SMTP authentication as %s: %w", s.User, err)
		}
	}
	from := s.From
	if a, err := mail.ParseAddress(s.From); err == nil {
		from = a.Address
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return fmt.Errorf("SMTP RCPT TO %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	c.Quit()
	return nil
}
