package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/myt-iot/myt/render"
)

// A platform on an SSH host (the ssh provider, or a cloud machine) keeps
// its worker API, RabbitMQ management API and Grafana on the host's
// loopback. The monitor reaches them through one SSH connection per
// platform, logged in with the platform's monitor key: a key MyT made for
// the platform, kept in its secrets (sealed with the server key, so the
// poller reads it without a signed-in user) and installed by every deploy
// in the SSH user's authorized_keys with options that allow nothing but
// forwarding to those ports and one command, df (KeyOptions).

// Platform secrets the deploy job writes for the monitor (deploy keeps
// them beside SecretCACert, deploy/monitorkey.go).
const (
	// SecretSSHKey is the platform's monitor key: an ed25519 private key
	// in OpenSSH PEM.
	SecretSSHKey = "ssh/monitor_key"
	// SecretSSHLogin is where the monitor logs in: SSHLogin as JSON.
	SecretSSHLogin = "ssh/monitor_login"
	// SecretKnownHosts is the host keys deploy recorded at its first
	// contact (known_hosts lines).
	SecretKnownHosts = "ssh/known_hosts"
)

// SSHLogin is where the monitor key logs in.
type SSHLogin struct {
	User string `json:"user"`
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Addr is host:port.
func (l SSHLogin) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// safePath is what DiskCommand accepts as a directory: it is written into
// a forced command, unquoted.
var safePath = regexp.MustCompile(`^/[A-Za-z0-9/._-]*$`)

// DiskCommand is the one command the monitor key may run: df of the
// platform's data directory in POSIX format.
func DiskCommand(dataDir string) string { return "df -P " + dataDir }

// KeyOptions returns the authorized_keys options of a platform's monitor
// key: no shell, no pty, no agent or X11 forwarding (restrict), local
// forwarding only to the loopback ports of the management API, Grafana
// and each of the workers' APIs (permitopen), remote forwarding only on
// the loopback's port 22 (permitlisten: sshd's port, which it normally
// holds, and below 1024, which only root may bind; an authorized_keys
// line cannot say "none"),
// and every session runs DiskCommand(dataDir) whatever was asked
// (command). dataDir must be an absolute path of letters, digits and
// "/._-".
func KeyOptions(workers int, dataDir string) (string, error) {
	if !safePath.MatchString(dataDir) {
		return "", fmt.Errorf("data directory %q: want an absolute path of letters, digits and /._-", dataDir)
	}
	opts := []string{"restrict", "port-forwarding"}
	for _, port := range forwardPorts(workers) {
		opts = append(opts, fmt.Sprintf(`permitopen="127.0.0.1:%d"`, port))
	}
	// port-forwarding also allows -R: limit it to a port that is taken.
	opts = append(opts, `permitlisten="127.0.0.1:22"`, `command="`+DiskCommand(dataDir)+`"`)
	return strings.Join(opts, ","), nil
}

// forwardPorts are the loopback ports the monitor reads.
func forwardPorts(workers int) []int {
	ports := []int{render.ManagementPort, render.GrafanaPort}
	for i := range max(workers, 1) {
		ports = append(ports, render.WorkerHostPort+i)
	}
	return ports
}

// AuthorizedKey is the authorized_keys line of a monitor key: KeyOptions,
// the public key and comment (which deploy uses to find its own line).
func AuthorizedKey(pub ssh.PublicKey, workers int, dataDir, comment string) (string, error) {
	opts, err := KeyOptions(workers, dataDir)
	if err != nil {
		return "", err
	}
	return opts + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment, nil
}

// Backoff defaults of SSHTarget.
const (
	DefaultMinBackoff = 30 * time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// SSHTarget polls a platform on an SSH host through a tunnel: one SSH
// connection, logged in with the monitor key, whose direct-tcpip channels
// carry Local's HTTP requests to the host's loopback, and whose one
// command (df) gives the data directory's use.
//
// The connection is made by Poll when there is none, and checked at the
// start of every poll (a keepalive); one that stopped answering is
// closed, which also ends every request still waiting on it, and made
// again. Only Poll dials, one dial at a time, bounded by the poll's
// context. After a failed dial the next waits MinBackoff, doubling up to
// MaxBackoff; the polls in between report the last failure. When the
// host cannot be reached, worker, broker and Grafana are down with the
// reason ("ssh 10.0.0.5:22: connection refused").
//
// Close closes the connection. A Poll and Close may not run at once
// (the Poller calls Close after the loop's last Poll).
type SSHTarget struct {
	Login SSHLogin
	// Key returns the monitor key (PEM); KnownHosts the host keys
	// recorded at deploy. Both are read at each dial. A host key that is
	// not among them is refused: MyT never trusts a changed key.
	Key        func(ctx context.Context) ([]byte, error)
	KnownHosts func(ctx context.Context) ([]byte, error)
	// DataDir is the data directory on the host (render.HostDataDir);
	// empty: disk use is not read.
	DataDir string
	// Local reads the platform's APIs at their loopback addresses on the
	// host; its Client and Dial are set by the SSHTarget.
	Local LocalTarget
	// MinBackoff and MaxBackoff bound the wait between failed dials
	// (DefaultMinBackoff, DefaultMaxBackoff when zero).
	MinBackoff, MaxBackoff time.Duration
	Now                    func() time.Time

	once      sync.Once
	transport *http.Transport
	sem       chan struct{} // held while dialing

	mu       sync.Mutex
	client   *ssh.Client
	lastErr  error // the last dial's failure, reported until the next try
	retryAt  time.Time
	failures int
}

func (t *SSHTarget) init() {
	t.once.Do(func() {
		t.sem = make(chan struct{}, 1)
		t.transport = &http.Transport{
			Proxy:                 nil,
			DialContext:           t.DialContext,
			MaxIdleConnsPerHost:   2,
			MaxConnsPerHost:       4,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}
		t.Local.Client = &http.Client{Transport: t.transport}
		t.Local.Dial = t.DialContext
	})
}

func (t *SSHTarget) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Poll implements Target.
func (t *SSHTarget) Poll(ctx context.Context) Reading {
	t.init()
	c, err := t.connect(ctx)
	if err != nil {
		var r Reading
		reason := err.Error()
		r.down(ComponentWorker, "%s", reason)
		r.down(ComponentBroker, "%s", reason)
		if t.Local.GrafanaURL != "" {
			r.down(ComponentGrafana, "%s", reason)
		}
		return r
	}
	var used float64
	var diskErr error = errNoDataDir
	var wg sync.WaitGroup
	if t.DataDir != "" {
		wg.Go(func() { used, diskErr = t.disk(ctx, c) })
	}
	r := t.Local.Poll(ctx)
	wg.Wait()
	if diskErr == nil {
		r.add(MetricDiskUsed, Gauge, used)
	}
	return r
}

var errNoDataDir = errors.New("no data directory")

// DialContext opens a direct-tcpip channel to addr on the host through
// the current connection (it never dials SSH itself). It is the Local
// target's HTTP dialer.
func (t *SSHTarget) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	t.mu.Lock()
	c := t.client
	t.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("ssh %s: not connected", t.Login.Addr())
	}
	return c.DialContext(ctx, network, addr)
}

// Close closes the connection and the target's idle HTTP connections.
func (t *SSHTarget) Close() {
	t.mu.Lock()
	c := t.client
	t.client = nil
	t.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if t.transport != nil {
		t.transport.CloseIdleConnections()
	}
	t.Local.Close()
}

// connect returns a live connection: the current one if it answers a
// keepalive within ctx, else a new one, unless the last dial failed less
// than the backoff ago.
func (t *SSHTarget) connect(ctx context.Context) (*ssh.Client, error) {
	select {
	case t.sem <- struct{}{}:
		defer func() { <-t.sem }()
	case <-ctx.Done():
		return nil, t.reason(ctx.Err())
	}
	t.mu.Lock()
	c := t.client
	t.mu.Unlock()
	if c != nil {
		err := keepalive(ctx, c)
		if err == nil {
			return c, nil
		}
		t.drop(c)
		if ctx.Err() != nil {
			// It stopped answering: no time is left to dial in this poll.
			return nil, fmt.Errorf("ssh %s: the connection stopped answering within the poll timeout", t.Login.Addr())
		}
	}
	t.mu.Lock()
	if t.lastErr != nil && t.now().Before(t.retryAt) {
		err := t.lastErr
		t.mu.Unlock()
		return nil, err
	}
	t.mu.Unlock()
	c, err := t.dial(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failures++
		wait := t.MinBackoff
		if wait <= 0 {
			wait = DefaultMinBackoff
		}
		limit := t.MaxBackoff
		if limit <= 0 {
			limit = DefaultMaxBackoff
		}
		for i := 1; i < t.failures && wait < limit; i++ {
			wait *= 2
		}
		t.lastErr, t.retryAt = t.reason(err), t.now().Add(min(wait, limit))
		return nil, t.lastErr
	}
	t.client, t.lastErr, t.failures = c, nil, 0
	go func() {
		// The connection broke (or was closed): the next poll dials.
		_ = c.Wait()
		t.drop(c)
	}()
	return c, nil
}

// drop closes c and forgets it, if it is still the current connection;
// idle HTTP connections over it go too.
func (t *SSHTarget) drop(c *ssh.Client) {
	t.mu.Lock()
	current := t.client == c
	if current {
		t.client = nil
	}
	t.mu.Unlock()
	c.Close()
	if current {
		t.transport.CloseIdleConnections()
	}
}

// keepalive asks the host for an answer within ctx.
func keepalive(ctx context.Context, c *ssh.Client) error {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.Close() // ends the request
		<-done
		return ctx.Err()
	}
}

// dial connects and logs in, within ctx.
func (t *SSHTarget) dial(ctx context.Context) (*ssh.Client, error) {
	if t.Key == nil || t.KnownHosts == nil {
		return nil, errors.New("no monitor key or host keys")
	}
	pem, err := t.Key(ctx)
	if err != nil {
		return nil, fmt.Errorf("the monitor key cannot be read: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("the monitor key: %w", err)
	}
	known, err := t.KnownHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("the recorded host keys cannot be read: %w", err)
	}
	addr := t.Login.Addr()
	keys, err := hostKeys(known, addr)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              t.Login.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   checkHostKey(keys),
		HostKeyAlgorithms: hostKeyAlgorithms(keys),
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The handshake has no context: ctx's end closes the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			cc.Close()
		}
		conn.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

// errHostKey is a host key MyT did not record.
var errHostKey = errors.New("host key")

// hostKeys are the keys recorded for addr in known_hosts lines.
func hostKeys(known []byte, addr string) ([]ssh.PublicKey, error) {
	want := knownhosts.Normalize(addr)
	var keys []ssh.PublicKey
	rest := known
	for len(bytes.TrimSpace(rest)) > 0 {
		marker, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			return nil, fmt.Errorf("the recorded host keys: %w", err)
		}
		rest = r
		if marker == "" && slices.Contains(hosts, want) {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: none recorded for %s (deploy the platform to record it)", errHostKey, addr)
	}
	return keys, nil
}

func checkHostKey(keys []ssh.PublicKey) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
		return fmt.Errorf("%w changed: the host no longer presents the key MyT recorded at its first contact (a new machine at that address, or someone in between)", errHostKey)
	}
}

// hostKeyAlgorithms asks for the recorded keys' types, so the host shows
// one of them.
func hostKeyAlgorithms(keys []ssh.PublicKey) []string {
	var algs []string
	for _, k := range keys {
		if k.Type() == ssh.KeyAlgoRSA {
			algs = append(algs, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
		algs = append(algs, k.Type())
	}
	return slices.Compact(algs)
}

// reason says why the host cannot be reached, naming the address and the
// failure, never a secret: "ssh 10.0.0.5:22: connection refused".
func (t *SSHTarget) reason(err error) error {
	var msg string
	var se *os.SyscallError
	var oe *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, os.ErrDeadlineExceeded):
		msg = "no answer within the poll timeout"
	case errors.As(err, &se):
		msg = se.Err.Error()
	case errors.As(err, &dnsErr):
		msg = dnsErr.Error()
	case errors.As(err, &oe) && oe.Err != nil:
		msg = oe.Err.Error()
	case strings.Contains(err.Error(), "unable to authenticate"):
		// x/crypto/ssh says so in text only.
		msg = "the monitor key was refused (deploy or update the platform to install it)"
	default:
		msg = err.Error()
	}
	return fmt.Errorf("ssh %s: %s", t.Login.Addr(), msg)
}

// disk runs the key's command, df -P of the data directory, and reads
// the used share as diskUsed counts it.
func (t *SSHTarget) disk(ctx context.Context, c *ssh.Client) (float64, error) {
	s, err := c.NewSession()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	out, err := s.Output(DiskCommand(t.DataDir))
	if err != nil {
		return 0, err
	}
	return parseDF(out)
}

// parseDF reads df -P's line: used and available 1024-blocks are the two
// fields before the capacity ("62%"), so that names with spaces do not
// shift them.
func parseDF(out []byte) (float64, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return 0, fmt.Errorf("df: %d lines, want 2", len(lines))
	}
	f := strings.Fields(lines[1])
	for i := 2; i < len(f); i++ {
		if !strings.HasSuffix(f[i], "%") {
			continue
		}
		used, err1 := strconv.ParseFloat(f[i-2], 64)
		avail, err2 := strconv.ParseFloat(f[i-1], 64)
		if err1 != nil || err2 != nil {
			break
		}
		if used+avail == 0 {
			return 0, nil
		}
		return used / (used + avail), nil
	}
	return 0, fmt.Errorf("df: unexpected line %q", lines[1])
}

// sshTarget is the Target of a platform on an SSH host, from its secrets.
func (ts *Targets) sshTarget(ctx context.Context, platformID int64, workers int) (*SSHTarget, error) {
	if ts.Secrets == nil {
		return nil, errors.New("no secret store")
	}
	b, err := ts.Secrets.Get(ctx, platformID, SecretSSHLogin)
	if err != nil {
		return nil, err
	}
	var login SSHLogin
	if err := json.Unmarshal(b, &login); err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretSSHLogin, err)
	}
	t := &SSHTarget{
		Login:      login,
		Key:        func(ctx context.Context) ([]byte, error) { return ts.Secrets.Get(ctx, platformID, SecretSSHKey) },
		KnownHosts: func(ctx context.Context) ([]byte, error) { return ts.Secrets.Get(ctx, platformID, SecretKnownHosts) },
		DataDir:    render.HostDataDir,
	}
	t.Local = *loopbackTarget(ts, platformID, workers)
	return t, nil
}
