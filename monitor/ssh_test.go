package monitor_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
)

// listenIn listens on addr inside the network namespace netns (an SSH
// test host's): its 127.0.0.1 is the host's loopback, not this
// machine's. The socket stays in that namespace; the thread that made it
// goes back to this process's namespace (or, if it cannot, is thrown
// away with its goroutine), so that the process is never counted among
// the namespace's, which the host's removal kills.
func listenIn(t *testing.T, netns, addr string) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		f, err := os.Open("/run/netns/" + netns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", netns, err)}
			return
		}
		l, err := net.Listen("tcp", addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.l.Close() })
	return r.l
}

// serveIn serves h on addr in netns (over TLS when cert is set).
func serveIn(t *testing.T, netns, addr string, h http.Handler, cert *tls.Certificate) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = listenIn(t, netns, addr)
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
}

// sshFixture is an SSH test host (a real sshd in its own network
// namespace) holding a platform's monitor key with the restrictions
// deploy installs, and on its loopback a worker's API, the management
// API, Grafana over HTTPS, and a service on a port the key must not
// reach (127.0.0.1:5432).
type sshFixture struct {
	*fixture
	host    *testenv.SSHHost
	signer  ssh.Signer
	dataDir string
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	e := testenv.Require(t)
	h := e.SSHHost(t)
	f := &sshFixture{fixture: newFixture(t), host: h, dataDir: t.TempDir()}
	ctx := context.Background()

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "monitor")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(block)
	if f.signer, err = ssh.ParsePrivateKey(keyPEM); err != nil {
		t.Fatal(err)
	}
	line, err := monitor.AuthorizedKey(f.signer.PublicKey(), 1, f.dataDir, "myt-monitor:test")
	if err != nil {
		t.Fatal(err)
	}
	// The test host's sshd reads its own authorized_keys (scripts/testenv).
	auth := filepath.Join(filepath.Dir(h.KeyFile), "authorized_keys")
	a, err := os.OpenFile(auth, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintln(a, line); err != nil {
		t.Fatal(err)
	}
	a.Close()

	const password = "Adm1n-pw-over-ssh"
	ca, err := pki.NewCA("shed", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	known, err := os.ReadFile(h.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	login, _ := json.Marshal(monitor.SSHLogin{User: h.User, Host: h.Addr, Port: h.Port})
	for name, v := range map[string][]byte{
		render.SecretRabbitMQAdmin: []byte(password), monitor.SecretCACert: ca.CertPEM,
		monitor.SecretSSHKey: keyPEM, monitor.SecretKnownHosts: known, monitor.SecretSSHLogin: login,
	} {
		if err := f.svc.Secrets.Put(ctx, f.platform.ID, name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	f.platform.Design.Spec.Target.Provider = myt.ProviderSSH

	w, _ := newWorkerServer(t, true) // its handler, served in the namespace below
	w.Metrics.Stored.Add(7)
	w.Metrics.DBUp.Set(1)
	w.Metrics.BrokerUp.Set(1)
	wh := w.HTTPHandler("")
	serveIn(t, h.Name, fmt.Sprintf("127.0.0.1:%d", render.WorkerHostPort), http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			fmt.Fprintln(rw, "ready")
			return
		}
		wh.ServeHTTP(rw, r)
	}), nil)
	b, mgmt := newBroker(t, password)
	b.ready.Store(5)
	b.published.Store(99)
	serveIn(t, h.Name, fmt.Sprintf("127.0.0.1:%d", render.ManagementPort), mgmt.Config.Handler, nil)
	cert, err := ca.IssueServer([]string{"127.0.0.1"}, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	serveIn(t, h.Name, fmt.Sprintf("127.0.0.1:%d", render.GrafanaPort), http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprint(rw, `{"commit":"abc","database":"ok","version":"11.3.0"}`)
	}), &pair)
	forbidden := listenIn(t, h.Name, "127.0.0.1:5432")
	go func() {
		for {
			c, err := forbidden.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "forbidden-service")
			c.Close()
		}
	}()
	return f
}

// dialAs logs in to the test host with signer.
func (f *sshFixture) dialAs(t *testing.T, signer ssh.Signer) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", net.JoinHostPort(f.host.Addr, strconv.Itoa(f.host.Port)), &ssh.ClientConfig{
		User: f.host.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second, // the host's own key is checked by the target's tests
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	defer c.Close()
	// A channel has no deadlines: a server that waits for a request is
	// cut off after a while.
	stop := time.AfterFunc(3*time.Second, func() { c.Close() })
	defer stop.Stop()
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestMonitorKeyRestrictions: with the options deploy installs
// (monitor.KeyOptions), the monitor key forwards to an allowed port of
// the host's loopback, and nothing else: another loopback port (which
// the host's own admin key reaches), a remote listen, a pty, and any
// command but the forced df are refused or replaced.
func TestMonitorKeyRestrictions(t *testing.T) {
	f := newSSHFixture(t)
	mon := f.dialAs(t, f.signer)

	// Allowed: the worker's API on the host's loopback.
	c, err := mon.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", render.WorkerHostPort))
	if err != nil {
		t.Fatalf("forward to the worker's port: %v", err)
	}
	fmt.Fprintf(c, "GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
	if got := readAll(t, c); !strings.Contains(got, "200 OK") || !strings.Contains(got, "ready") {
		t.Errorf("worker /readyz through the tunnel: %q", got)
	}

	// The host's admin key reaches 127.0.0.1:5432: the service is there.
	adminKey, err := os.ReadFile(f.host.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := ssh.ParsePrivateKey(adminKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err = f.dialAs(t, admin).Dial("tcp", "127.0.0.1:5432")
	if err != nil {
		t.Fatalf("admin key to 127.0.0.1:5432: %v", err)
	}
	if got := readAll(t, c); got != "forbidden-service\n" {
		t.Fatalf("admin key to 127.0.0.1:5432: %q", got)
	}
	// The monitor key does not.
	for _, addr := range []string{"127.0.0.1:5432", "127.0.0.1:22", "localhost:" + strconv.Itoa(render.WorkerHostPort)} {
		if c, err := mon.Dial("tcp", addr); err == nil {
			t.Errorf("monitor key forwarded to %s: %q", addr, readAll(t, c))
		} else if !strings.Contains(err.Error(), "administratively prohibited") {
			t.Errorf("monitor key to %s: %v, want administratively prohibited", addr, err)
		}
	}
	// No remote listen.
	if l, err := mon.Listen("tcp", "127.0.0.1:2222"); err == nil {
		l.Close()
		t.Error("monitor key may listen on the host (remote forwarding)")
	}
	// Any command runs the forced df instead.
	for _, cmd := range []string{"id", "cat /etc/hostname; echo escaped", ""} {
		s, err := mon.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		if cmd == "" {
			var buf strings.Builder
			s.Stdout = &buf
			if err := s.Shell(); err == nil {
				_ = s.Wait()
			}
			out = []byte(buf.String())
		} else {
			out, _ = s.Output(cmd)
		}
		s.Close()
		if !strings.HasPrefix(string(out), "Filesystem") || strings.Contains(string(out), "uid=") || strings.Contains(string(out), "escaped") {
			t.Errorf("command %q ran as %q, want the forced df", cmd, out)
		}
	}
	s, err := mon.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Error("monitor key got a pty")
	}
}

// sshTarget makes the platform's target with Targets.For, as myt serve
// does, with short backoffs.
func (f *sshFixture) sshTarget(t *testing.T) func(*myt.Platform) (monitor.Target, error) {
	ts := &monitor.Targets{Client: monitor.NewClient(), Secrets: f.svc.Secrets}
	return func(p *myt.Platform) (monitor.Target, error) {
		tg, err := ts.For(p)
		if err != nil {
			return nil, err
		}
		st := tg.(*monitor.SSHTarget)
		st.DataDir = f.dataDir
		st.MinBackoff, st.MaxBackoff = 100*time.Millisecond, 300*time.Millisecond
		return st, nil
	}
}

// dfUsed is df -P's used share of dir's file system, on this machine.
func dfUsed(t *testing.T, dir string) float64 {
	t.Helper()
	out, err := exec.Command("df", "-P", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Scan()
	sc.Scan()
	fs := strings.Fields(sc.Text())
	used, _ := strconv.ParseFloat(fs[2], 64)
	avail, _ := strconv.ParseFloat(fs[3], 64)
	return used / (used + avail)
}

func components(st monitor.Status) map[string]monitor.ComponentState {
	m := map[string]monitor.ComponentState{}
	for _, c := range st.Components {
		m[c.Name] = c
	}
	return m
}

// TestSSHTargetPollsThroughTheTunnel: the poller reads an ssh platform
// through one SSH connection logged in with the monitor key: worker,
// broker, database and Grafana up, counters and disk use recorded. When
// the host's sshd goes away the components are down with the reason
// ("ssh 10.250.x.y:22: connection refused"), and when the host stops
// answering at all, down with "no answer"; each time polling recovers
// once the host is back, and goroutines do not pile up while it is gone
// and all end at Stop.
func TestSSHTargetPollsThroughTheTunnel(t *testing.T) {
	f := newSSHFixture(t)
	addr := net.JoinHostPort(f.host.Addr, strconv.Itoa(f.host.Port))
	p := &monitor.Poller{Store: f.store, Targets: f.sshTarget(t), Interval: 600 * time.Millisecond, Timeout: 500 * time.Millisecond}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	runtime.GC()
	before := runtime.NumGoroutine()
	p.Sync([]*myt.Platform{f.platform})
	id := f.platform.ID
	wait := func(what string, cond func(map[string]monitor.ComponentState) bool) monitor.Status {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, _ := p.Status(id)
			if st.Polls > 0 && cond(components(st)) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; last status %+v", what, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	allUp := func(cs map[string]monitor.ComponentState) bool {
		for _, name := range []string{monitor.ComponentWorker, monitor.ComponentBroker, monitor.ComponentDatabase, monitor.ComponentBrokerByWorker, monitor.ComponentGrafana} {
			if !cs[name].Up {
				return false
			}
		}
		return true
	}
	downWith := func(reason string) func(map[string]monitor.ComponentState) bool {
		return func(cs map[string]monitor.ComponentState) bool {
			for _, name := range []string{monitor.ComponentWorker, monitor.ComponentBroker, monitor.ComponentGrafana} {
				if cs[name].Up || !strings.Contains(cs[name].Reason, reason) {
					return false
				}
			}
			return true
		}
	}
	wait("every component up through the tunnel", allUp)
	for metric, want := range map[string]float64{monitor.MetricStored: 7, monitor.MetricQueueDepth: 5, monitor.MetricMessagesIn: 99} {
		if got, ok := lastRaw(t, f.fixture, metric); !ok || got != want {
			t.Errorf("%s = %v (recorded: %v), want %v", metric, got, ok, want)
		}
	}
	// df runs in a session of its own, which a loaded machine may not
	// finish within the first poll.
	waitFor(t, "disk use", func() bool { _, ok := lastRaw(t, f.fixture, monitor.MetricDiskUsed); return ok })
	if got, ok := lastRaw(t, f.fixture, monitor.MetricDiskUsed); !ok || math.Abs(got-dfUsed(t, f.dataDir)) > 0.01 {
		t.Errorf("disk_used_ratio %v (recorded: %v), df -P says %v", got, ok, dfUsed(t, f.dataDir))
	}
	upGoroutines := runtime.NumGoroutine()

	// sshd goes away, sessions and all: refused.
	hdir := filepath.Dir(f.host.KeyFile)
	stopSSHD(t, f.host.Name)
	st := wait("components down, connection refused", downWith("ssh "+addr+": connection refused"))
	t.Logf("sshd gone: %+v", st.Components)
	startSSHD(t, f.host.Name, hdir)
	wait("recovery after sshd is back", allUp)

	// The host stops answering (its link goes down): no answer.
	run(t, "ip", "-n", f.host.Name, "link", "set", "eth0", "down")
	st = wait("components down, no answer", downWith("ssh "+addr+": "))
	t.Logf("host silent: %+v", st.Components)
	n := st.Polls
	peak := 0
	for st.Polls < n+8 {
		peak = max(peak, runtime.NumGoroutine())
		time.Sleep(20 * time.Millisecond)
		st, _ = p.Status(id)
	}
	if cs := components(st); !downWith("ssh " + addr + ": no answer within the poll timeout")(cs) {
		t.Errorf("silent host: %+v", st.Components)
	}
	if peak > upGoroutines+10 {
		t.Errorf("goroutines: %d while polling a live host, peak %d over 8 polls of a silent one", upGoroutines, peak)
	}
	run(t, "ip", "-n", f.host.Name, "link", "set", "eth0", "up")
	wait("recovery after the host answers again", allUp)
	for _, c := range st.Components {
		if strings.Contains(c.Reason, "BEGIN") || strings.Contains(c.Reason, "Adm1n") {
			t.Errorf("a secret in a reason: %q", c.Reason)
		}
	}

	p.Stop()
	waitFor(t, "goroutines to end after Stop", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// TestSSHTargetRefusesAnotherHostKey: a host that shows a key other than
// the one deploy recorded is never trusted, and one with no recorded key
// is not dialled; both say why.
func TestSSHTargetRefusesAnotherHostKey(t *testing.T) {
	f := newSSHFixture(t)
	tg, err := f.sshTarget(t)(f.platform)
	if err != nil {
		t.Fatal(err)
	}
	st := tg.(*monitor.SSHTarget)
	defer st.Close()
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	for known, want := range map[string]string{
		f.host.Addr + " " + string(ssh.MarshalAuthorizedKey(pub)): "host key changed",
		"": "host key: none recorded for " + f.host.Addr + ":22",
	} {
		st.KnownHosts = func(context.Context) ([]byte, error) { return []byte(known), nil }
		time.Sleep(300 * time.Millisecond) // past the backoff of the try before
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := st.Poll(ctx)
		cancel()
		if len(r.Components) == 0 || r.Components[0].Up || !strings.Contains(r.Components[0].Reason, want) {
			t.Errorf("known_hosts %q: %+v, want down with %q", known, r.Components, want)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// stopSSHD ends every process of the test host's namespace: its sshd
// and the sessions it forked.
func stopSSHD(t *testing.T, netns string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", netns).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err == nil && pid != os.Getpid() {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// startSSHD starts the test host's sshd again, as scripts/testenv does.
func startSSHD(t *testing.T, netns, hdir string) {
	t.Helper()
	run(t, "ip", "netns", "exec", netns, "/usr/sbin/sshd", "-f", filepath.Join(hdir, "sshd_config"), "-E", filepath.Join(hdir, "sshd.log"))
}
