package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ReadyTimeout bounds how long a starter waits for its service to answer.
const ReadyTimeout = 3 * time.Minute

// Container is one service container on the private engine. Its published
// ports are on 127.0.0.1 and keep their numbers across Stop and Start.
type Container struct {
	ID, Name string
	Image    string
	// Ports maps each container port to its host port on 127.0.0.1.
	Ports map[int]int

	env   *Env
	ready func(ctx context.Context) error
}

// HostPort is the 127.0.0.1 port that containerPort is published on.
func (c *Container) HostPort(containerPort int) int { return c.Ports[containerPort] }

// Stop stops the container gracefully (SIGTERM, then SIGKILL after 30 s).
func (c *Container) Stop(t testing.TB) {
	t.Helper()
	c.env.Docker(t, "stop", "-t", "30", c.ID)
}

// Kill sends SIGKILL to the container's main process.
func (c *Container) Kill(t testing.TB) {
	t.Helper()
	c.env.Docker(t, "kill", c.ID)
}

// Start starts a stopped or killed container again and waits until its
// service answers its protocol.
func (c *Container) Start(t testing.TB) {
	t.Helper()
	c.env.Docker(t, "start", c.ID)
	c.wait(t)
}

// IP is the container's address on its first network (in 10.250.128.0/17),
// for traffic from other containers or the host.
func (c *Container) IP(t testing.TB) string {
	t.Helper()
	ip := strings.TrimSpace(c.env.Docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", c.ID))
	ip, _, _ = strings.Cut(ip, " ")
	if ip == "" {
		t.Fatalf("container %s has no IP address", c.Name)
	}
	return ip
}

// Network creates a user-defined bridge network on the private engine
// (containers on it resolve each other by name and alias) and removes it
// at the end of the test. It returns the network's name.
func (e *Env) Network(t testing.TB) string {
	t.Helper()
	name := "myt-test-net-" + randHex(4)
	e.Docker(t, "network", "create", "--label", "myt-testenv.test="+t.Name(), name)
	t.Cleanup(func() { _, _ = e.docker(context.Background(), nil, "network", "rm", name) })
	return name
}

// Logs returns the container's output so far.
func (c *Container) Logs(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// docker logs replays the container's stderr on its own stderr
	out, err := c.env.DockerCmd(ctx, "logs", c.ID).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(docker logs: %v)", out, err)
	}
	return string(out)
}

func (c *Container) wait(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		last = c.ready(cctx)
		ccancel()
		if last == nil {
			return
		}
		if st, _ := c.env.docker(ctx, nil, "inspect", "-f", "{{.State.Status}}", c.ID); strings.TrimSpace(st) == "exited" {
			t.Fatalf("container %s (%s) exited before it was ready: %v\n%s", c.Name, c.Image, last, c.Logs(t))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s (%s) not ready after %v: %v\n%s", c.Name, c.Image, ReadyTimeout, last, c.Logs(t))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// spec describes a container to run.
type spec struct {
	service string            // short name, part of the container name
	image   string            // key of Env.Image
	ports   []int             // container ports to publish on 127.0.0.1
	env     map[string]string // passed through the CLI's environment, not argv
	args    []string          // command arguments after the image
	network string            // user-defined network to join, if any
	aliases []string          // DNS names on network
	user    string            // --user, if set
	mounts  []mount           // read-only bind mounts
}

// mount is a read-only bind mount of a host path.
type mount struct{ src, dst string }

// Option changes how a starter runs its container.
type Option func(*spec)

// WithEnv sets an environment variable in the container (passed to docker
// through its environment, so a secret value never shows in argv).
func WithEnv(key, value string) Option {
	return func(s *spec) { s.env[key] = value }
}

// WithMQTTPrefetch raises RabbitMQ's mqtt.prefetch (the image's
// RABBITMQ_MQTT_PREFETCH variable).
func WithMQTTPrefetch(n int) Option { return WithEnv("RABBITMQ_MQTT_PREFETCH", strconv.Itoa(n)) }

// WithNetwork attaches the container to a user-defined network (see
// Env.Network) under the given DNS aliases, so other containers there reach
// it by name.
func WithNetwork(network string, aliases ...string) Option {
	return func(s *spec) {
		s.network = network
		s.aliases = append(s.aliases, aliases...)
	}
}

// WithArgs appends arguments to the container's command (e.g. server flags
// for MariaDB or PostgreSQL: "-c", "max_connections=50").
func WithArgs(args ...string) Option {
	return func(s *spec) { s.args = append(s.args, args...) }
}

// WithMount bind-mounts the host path src read-only at dst in the
// container (the private engine runs on this machine, so test files can be
// mounted). The container's user must be able to read src.
func WithMount(src, dst string) Option {
	return func(s *spec) { s.mounts = append(s.mounts, mount{src: src, dst: dst}) }
}

func (s spec) with(opts []Option) spec {
	if s.env == nil {
		s.env = map[string]string{}
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// run starts a fresh container for s, removes it at the end of the test,
// and leaves c.ready for the caller to set and wait on.
func (e *Env) run(t testing.TB, s spec) *Container {
	t.Helper()
	image := e.Image(s.image)
	Need(t, "image "+s.image, image != "", "`scripts/testenv up` did not build it (see its output)")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c := &Container{Name: "myt-test-" + s.service + "-" + randHex(4), Image: image, Ports: map[int]int{}, env: e}
		// The pid label lets `scripts/testenv up` tell leftovers of dead test
		// processes from containers a running test has merely stopped.
		args := []string{"run", "-d", "--name", c.Name, "--label", "myt-testenv.test=" + t.Name(),
			"--label", "myt-testenv.pid=" + strconv.Itoa(os.Getpid())}
		for _, p := range s.ports {
			hp, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			c.Ports[p] = hp
			args = append(args, "-p", fmt.Sprintf("127.0.0.1:%d:%d", hp, p))
		}
		if s.user != "" {
			args = append(args, "--user", s.user)
		}
		for _, m := range s.mounts {
			args = append(args, "--mount", "type=bind,readonly,src="+m.src+",dst="+m.dst)
		}
		if s.network != "" {
			args = append(args, "--network", s.network)
			for _, a := range s.aliases {
				args = append(args, "--network-alias", a)
			}
		}
		var env []string
		for k, v := range s.env {
			args = append(args, "-e", k)
			env = append(env, k+"="+v)
		}
		args = append(args, image)
		args = append(args, s.args...)
		out, err := e.docker(context.Background(), env, args...)
		id := strings.TrimSpace(out)
		if id != "" {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("logs of %s:\n%s", c.Name, tail(c.Logs(t), 60))
				}
				_, _ = e.docker(context.Background(), nil, "rm", "-f", "-v", id)
			})
		}
		if err == nil {
			c.ID = id
			return c
		}
		lastErr = err
		if !strings.Contains(err.Error(), "already in use") && !strings.Contains(err.Error(), "already allocated") {
			break
		}
	}
	t.Fatalf("start %s: %v", s.service, lastErr)
	return nil
}

// RabbitMQ is a broker with MQTT and management enabled.
type RabbitMQ struct {
	*Container
	AMQPURL       string // amqp://user:pass@127.0.0.1:port/
	MQTTAddr      string // 127.0.0.1:port
	ManagementURL string // http://127.0.0.1:port
	User          string
	Password      string
}

// RabbitMQ starts a fresh RabbitMQ and waits until AMQP, MQTT and the
// management API all answer.
func (e *Env) RabbitMQ(t testing.TB, opts ...Option) *RabbitMQ {
	t.Helper()
	r := &RabbitMQ{User: "myt", Password: randHex(12)}
	r.Container = e.run(t, spec{service: "rabbitmq", image: "rabbitmq", ports: []int{5672, 1883, 15672},
		env: map[string]string{"RABBITMQ_DEFAULT_USER": r.User, "RABBITMQ_DEFAULT_PASS": r.Password}}.with(opts))
	r.AMQPURL = (&url.URL{Scheme: "amqp", User: url.UserPassword(r.User, r.Password), Host: hostPort(r.HostPort(5672)), Path: "/"}).String()
	r.MQTTAddr = hostPort(r.HostPort(1883))
	r.ManagementURL = "http://" + hostPort(r.HostPort(15672))
	r.ready = r.check
	r.wait(t)
	return r
}

func (r *RabbitMQ) check(ctx context.Context) error {
	if err := bannerCheck(ctx, r.HostPort(5672), nil); err != nil {
		return err
	}
	conn, err := amqp.DialConfig(r.AMQPURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return fmt.Errorf("amqp: %w", err)
	}
	conn.Close()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + r.MQTTAddr).SetClientID("testenv-ready-" + randHex(4)).
		SetUsername(r.User).SetPassword(r.Password).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(6 * time.Second) {
		return fmt.Errorf("mqtt: connect timed out")
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	c.Disconnect(0)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.ManagementURL+"/api/overview", nil)
	req.SetBasicAuth(r.User, r.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("management: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("management: %s", resp.Status)
	}
	return nil
}

// SQLDB is a MariaDB or PostgreSQL server with one database and one user
// that owns it.
type SQLDB struct {
	*Container
	// DSN: go-sql-driver/mysql format for MariaDB, a postgres:// URL for
	// PostgreSQL.
	DSN      string
	Host     string
	Port     int
	User     string
	Password string
	Database string
}

// MariaDB starts a fresh MariaDB (the MySQL stand-in) and waits until the
// user can query its database. DSN is in go-sql-driver/mysql format.
func (e *Env) MariaDB(t testing.TB, opts ...Option) *SQLDB {
	t.Helper()
	d := &SQLDB{Host: "127.0.0.1", User: "myt", Password: randHex(12), Database: "myt"}
	d.Container = e.run(t, spec{service: "mariadb", image: "mariadb", ports: []int{3306},
		env: map[string]string{"MARIADB_ROOT_PASSWORD": randHex(12), "MARIADB_DATABASE": d.Database, "MARIADB_USER": d.User, "MARIADB_PASSWORD": d.Password}}.with(opts))
	d.Port = d.HostPort(3306)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName, cfg.ParseTime = d.User, d.Password, "tcp", hostPort(d.Port), d.Database, true
	d.DSN = cfg.FormatDSN()
	d.ready = func(ctx context.Context) error {
		// The server greets first (protocol version 10); waiting for that
		// keeps the driver from logging errors about half-started servers.
		if err := bannerCheck(ctx, d.Port, []byte{10}); err != nil {
			return err
		}
		db, err := sql.Open("mysql", d.DSN)
		if err != nil {
			return err
		}
		defer db.Close()
		var one int
		return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	}
	d.wait(t)
	return d
}

// Postgres starts a fresh PostgreSQL (the TimescaleDB stand-in, without
// the extension) and waits until the user can query its database. DSN is
// a postgres:// URL usable by pgx.
func (e *Env) Postgres(t testing.TB, opts ...Option) *SQLDB {
	t.Helper()
	d := &SQLDB{Host: "127.0.0.1", User: "myt", Password: randHex(12), Database: "myt"}
	d.Container = e.run(t, spec{service: "postgres", image: "postgres", ports: []int{5432},
		env: map[string]string{"POSTGRES_USER": d.User, "POSTGRES_PASSWORD": d.Password, "POSTGRES_DB": d.Database}}.with(opts))
	d.Port = d.HostPort(5432)
	d.DSN = (&url.URL{Scheme: "postgres", User: url.UserPassword(d.User, d.Password), Host: hostPort(d.Port), Path: "/" + d.Database, RawQuery: "sslmode=disable"}).String()
	d.ready = func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, d.DSN)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "SELECT 1")
		return err
	}
	d.wait(t)
	return d
}

// Influx is an InfluxDB server: 1.x (HTTP API, no authentication) from
// InfluxDB, or the 2.x API subset from InfluxDB2.
type Influx struct {
	*Container
	URL      string // http://127.0.0.1:port
	Database string // 1.x database, or 2.x bucket; created before the starter returns
	Org      string // 2.x only
	Token    string // 2.x only: "Authorization: Token <Token>"
}

// InfluxDB starts a fresh InfluxDB 1.x and waits until it answers /ping
// and lists Database.
func (e *Env) InfluxDB(t testing.TB, opts ...Option) *Influx {
	t.Helper()
	in := &Influx{Database: "myt"}
	in.Container = e.run(t, spec{service: "influxdb", image: "influxdb", ports: []int{8086},
		env: map[string]string{"INFLUXDB_DB": in.Database}}.with(opts))
	in.URL = "http://" + hostPort(in.HostPort(8086))
	in.ready = in.databaseListed
	in.wait(t)
	return in
}

// InfluxDB2 starts the InfluxDB image in its 2.x mode (the upstream 2.x
// image's DOCKER_INFLUXDB_INIT_* variables): POST /api/v2/write with org,
// bucket and token, and the 1.x-compatible /query and /write with the
// token. Flux and the rest of the 2.x API are absent (docs/testing.md).
func (e *Env) InfluxDB2(t testing.TB, opts ...Option) *Influx {
	t.Helper()
	in := &Influx{Database: "myt", Org: "myt", Token: randHex(16)}
	in.Container = e.run(t, spec{service: "influxdb2", image: "influxdb", ports: []int{8086},
		env: map[string]string{"DOCKER_INFLUXDB_INIT_MODE": "setup", "DOCKER_INFLUXDB_INIT_ORG": in.Org,
			"DOCKER_INFLUXDB_INIT_BUCKET": in.Database, "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": in.Token,
			"DOCKER_INFLUXDB_INIT_USERNAME": "myt", "DOCKER_INFLUXDB_INIT_PASSWORD": randHex(12)}}.with(opts))
	in.URL = "http://" + hostPort(in.HostPort(8086))
	in.ready = in.databaseListed
	in.wait(t)
	return in
}

// databaseListed is the readiness check of both modes: SHOW DATABASES
// (with the token in 2.x mode) lists Database.
func (in *Influx) databaseListed(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL+"/query?q="+url.QueryEscape("SHOW DATABASES"), nil)
	if err != nil {
		return err
	}
	if in.Token != "" {
		req.Header.Set("Authorization", "Token "+in.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("SHOW DATABASES: %s %s", resp.Status, body)
	}
	if !strings.Contains(string(body), `"`+in.Database+`"`) {
		return fmt.Errorf("database %q not created yet", in.Database)
	}
	return nil
}

// Mongo is a MongoDB wire-protocol server (FerretDB on SQLite; no
// authentication).
type Mongo struct {
	*Container
	URI string // mongodb://127.0.0.1:port/
}

// MongoDB starts a fresh MongoDB-wire server and waits until it answers
// ping.
func (e *Env) MongoDB(t testing.TB, opts ...Option) *Mongo {
	t.Helper()
	m := &Mongo{}
	m.Container = e.run(t, spec{service: "mongodb", image: "mongodb", ports: []int{27017}}.with(opts))
	m.URI = "mongodb://" + hostPort(m.HostPort(27017)) + "/"
	m.ready = func(ctx context.Context) error {
		if err := bannerCheck(ctx, m.HostPort(27017), nil); err != nil {
			return err
		}
		c, err := mongo.Connect(options.Client().ApplyURI(m.URI).SetServerSelectionTimeout(3 * time.Second).SetConnectTimeout(3 * time.Second))
		if err != nil {
			return err
		}
		defer c.Disconnect(context.Background())
		return c.Ping(ctx, nil)
	}
	m.wait(t)
	return m
}

// bannerCheck connects to 127.0.0.1:port. With want set, it waits for the
// server's first bytes and checks that byte 4 (after a MySQL packet
// header) is want[0]; otherwise it checks that the connection is not
// closed at once, which is what docker-proxy does while nothing listens in
// the container.
func bannerCheck(ctx context.Context, port int, want []byte) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", hostPort(port))
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 5)
	if want != nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("no greeting: %w", err)
		}
		if buf[4] != want[0] {
			return fmt.Errorf("unexpected greeting %x", buf)
		}
		return nil
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Read(buf); err == io.EOF {
		return fmt.Errorf("port %d: connection closed before the service answered", port)
	}
	return nil
}

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

// freePort asks the kernel for a free loopback port. The container binds it
// a moment later; run retries on the rare collision.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
