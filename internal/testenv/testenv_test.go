package testenv_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/myt-iot/myt/internal/testenv"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// fakeTB records Skip and Fatal instead of ending the goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = true }
func (f *fakeTB) Fatal(args ...any) { f.failed = true }

func TestNeed(t *testing.T) {
	for _, tc := range []struct {
		ci, ok       bool
		skip, failed bool
	}{
		{ci: false, ok: true},
		{ci: true, ok: true},
		{ci: false, ok: false, skip: true},
		{ci: true, ok: false, failed: true},
	} {
		t.Run(fmt.Sprintf("ci=%v,ok=%v", tc.ci, tc.ok), func(t *testing.T) {
			t.Setenv("CI", map[bool]string{true: "true", false: ""}[tc.ci])
			f := &fakeTB{TB: t}
			testenv.Need(f, "thing", tc.ok, "install it")
			if f.skipped != tc.skip || f.failed != tc.failed {
				t.Errorf("Need: skipped=%v failed=%v, want skipped=%v failed=%v", f.skipped, f.failed, tc.skip, tc.failed)
			}
		})
	}
}

func TestRequireWithoutEnvironment(t *testing.T) {
	t.Setenv("MYT_TESTENV_STATE", filepath.Join(t.TempDir(), "absent.json"))
	t.Setenv("CI", "true")
	f := &fakeTB{TB: t}
	testenv.Require(f)
	if !f.failed {
		t.Error("Require with no state file under CI=true did not fail the test")
	}
}

func TestEngineAndImages(t *testing.T) {
	e := testenv.Require(t)
	if got := e.DockerHost(); !strings.HasPrefix(got, "unix:///") {
		t.Errorf("DockerHost() = %q, want a unix socket", got)
	}
	for _, name := range []string{"base", "python", "rabbitmq", "mariadb", "postgres", "influxdb", "mongodb", "grafana", "worker"} {
		ref := e.Image(name)
		testenv.Need(t, "image "+name, ref != "", "scripts/testenv up did not build it")
		e.Docker(t, "image", "inspect", ref)
	}
	out := e.Docker(t, "run", "--rm", e.Image("base"), "cat", "/etc/os-release")
	if !strings.Contains(out, "bookworm") {
		t.Errorf("base image is not Debian 12:\n%s", out)
	}
	out = e.Docker(t, "run", "--rm", "--entrypoint", "python3", e.Image("worker"), "-c", "import sys; print(sys.version_info[0])")
	if strings.TrimSpace(out) != "3" {
		t.Errorf("worker image python3 printed %q", out)
	}
	if v := e.Docker(t, "compose", "version", "--short"); !strings.HasPrefix(strings.TrimSpace(v), "2.") {
		t.Errorf("docker compose version = %q, want 2.x", v)
	}
	env := e.ImageEnv()
	for _, k := range []string{"MYT_IMAGE_RABBITMQ", "MYT_IMAGE_MYSQL", "MYT_IMAGE_TIMESCALEDB", "MYT_IMAGE_MONGODB", "MYT_IMAGE_INFLUXDB", "MYT_IMAGE_GRAFANA", "MYT_IMAGE_WORKER"} {
		if env[k] == "" {
			t.Errorf("ImageEnv()[%s] is empty", k)
		}
	}
	env["MYT_IMAGE_WORKER"] = "changed by the caller"
	if e.ImageEnv()["MYT_IMAGE_WORKER"] == "changed by the caller" {
		t.Error("ImageEnv returned the environment's own map, not a copy")
	}
}

func TestRabbitMQ(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	mq := e.RabbitMQ(t, testenv.WithMQTTPrefetch(64))
	if env := e.Docker(t, "exec", mq.ID, "rabbitmqctl", "environment"); !strings.Contains(env, "{prefetch,64}") {
		t.Errorf("mqtt.prefetch not raised to 64; rabbitmqctl environment:\n%s", env)
	}

	// AMQP: publish to a queue, consume it back.
	conn, err := amqp.Dial(mq.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("testenv.q", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx(t), "", q.Name, false, false, amqp.Publishing{Body: []byte("hello amqp")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if string(m.Body) != "hello amqp" {
			t.Errorf("AMQP consumed %q", m.Body)
		}
		_ = m.Ack(false)
	case <-time.After(10 * time.Second):
		t.Fatal("AMQP: no message consumed within 10s")
	}

	// MQTT: subscribe, publish, receive; and the same message is routed to
	// AMQP through amq.topic, as the platform's ingest queue relies on.
	if _, err := ch.QueueDeclare("testenv.mqtt", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("testenv.mqtt", "devices.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + mq.MQTTAddr).SetClientID("testenv-test").
		SetUsername(mq.User).SetPassword(mq.Password).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("devices/+/telemetry", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT subscribe: %v", tok.Error())
	}
	if tok := c.Publish("devices/d1/telemetry", 1, false, `{"t":21.5}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT publish: %v", tok.Error())
	}
	select {
	case p := <-got:
		if p != `{"t":21.5}` {
			t.Errorf("MQTT received %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("MQTT: no message received within 10s")
	}
	m, ok, err := ch.Get("testenv.mqtt", true)
	if err != nil || !ok || string(m.Body) != `{"t":21.5}` || m.RoutingKey != "devices.d1.telemetry" {
		t.Errorf("AMQP get of the MQTT message: ok=%v err=%v key=%q body=%q", ok, err, m.RoutingKey, m.Body)
	}

	// Stop and Start keep the ports: the same URL works again, and the
	// durable quorum queue kept a message published before the stop.
	if err := ch.PublishWithContext(ctx(t), "", "testenv.mqtt", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	mq.Stop(t)
	mq.Start(t)
	conn2, err := amqp.Dial(mq.AMQPURL)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	defer conn2.Close()
	ch2, err := conn2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok, err := ch2.Get("testenv.mqtt", true); err != nil || !ok || string(m.Body) != "kept" {
		t.Errorf("after restart: get ok=%v err=%v body=%q, want the persistent message", ok, err, m.Body)
	}

	// Management API answers with the generated credentials only.
	req, _ := http.NewRequest(http.MethodGet, mq.ManagementURL+"/api/overview", nil)
	req.SetBasicAuth(mq.User, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("management API with a wrong password: %s, want 401", resp.Status)
	}
}

func TestMariaDB(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	d := e.MariaDB(t)
	db, err := sql.Open("mysql", d.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := ctx(t)
	if _, err := db.ExecContext(c, "CREATE TABLE readings (id VARCHAR(64) PRIMARY KEY, v DOUBLE, at DATETIME(3))"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	if _, err := db.ExecContext(c, "INSERT INTO readings VALUES (?, ?, ?)", "m1", 21.5, at); err != nil {
		t.Fatal(err)
	}
	var v float64
	var got time.Time
	if err := db.QueryRowContext(c, "SELECT v, at FROM readings WHERE id = ?", "m1").Scan(&v, &got); err != nil {
		t.Fatal(err)
	}
	if v != 21.5 || !got.Equal(at) {
		t.Errorf("read back v=%v at=%v, want 21.5 %v", v, got, at)
	}
	// SIGKILL, then Start: the committed row survives, on the same DSN.
	d.Kill(t)
	d.Start(t)
	db2, err := sql.Open("mysql", d.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var n int
	if err := db2.QueryRowContext(c, "SELECT COUNT(*) FROM readings").Scan(&n); err != nil || n != 1 {
		t.Errorf("after kill and start: count=%d err=%v, want 1 row", n, err)
	}
	var version string
	_ = db2.QueryRowContext(c, "SELECT VERSION()").Scan(&version)
	t.Logf("server %s on %s:%d", version, d.Host, d.Port)
}

// TestNetwork: containers on a test network reach a service by its alias.
func TestNetwork(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	net := e.Network(t)
	pg := e.Postgres(t, testenv.WithNetwork(net, "timescaledb"))
	probe := `import socket; s=socket.create_connection(("timescaledb", 5432), timeout=5); print("ok")`
	if out := e.Docker(t, "run", "--rm", "--network", net, e.Image("python"), "python3", "-c", probe); strings.TrimSpace(out) != "ok" {
		t.Errorf("probe by alias printed %q", out)
	}
	if ip := pg.IP(t); !strings.HasPrefix(ip, "10.250.") {
		t.Errorf("container IP %s is outside 10.250.0.0/16", ip)
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	d := e.Postgres(t)
	c := ctx(t)
	conn, err := pgx.Connect(c, d.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(c, "CREATE TABLE readings (id text PRIMARY KEY, doc jsonb, at timestamptz)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(c, "INSERT INTO readings VALUES ($1, $2, now())", "m1", `{"t": 21.5}`); err != nil {
		t.Fatal(err)
	}
	var temp float64
	if err := conn.QueryRow(c, "SELECT (doc->>'t')::float8 FROM readings WHERE id = $1", "m1").Scan(&temp); err != nil {
		t.Fatal(err)
	}
	if temp != 21.5 {
		t.Errorf("read back %v, want 21.5", temp)
	}
	// Password authentication is enforced over TCP.
	bad := strings.Replace(d.DSN, url.UserPassword(d.User, d.Password).String(), url.UserPassword(d.User, "wrong").String(), 1)
	if conn, err := pgx.Connect(c, bad); err == nil {
		conn.Close(c)
		t.Error("connected with a wrong password")
	}
}

func TestInfluxDB(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	in := e.InfluxDB(t)
	body := "readings,device=d1 t=21.5 1767323045000000000\n"
	resp, err := http.Post(in.URL+"/write?precision=ns&db="+url.QueryEscape(in.Database), "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	q := url.Values{"db": {in.Database}, "q": {`SELECT "t" FROM "readings" WHERE "device" = 'd1'`}, "epoch": {"ns"}}
	resp, err = http.Get(in.URL + "/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]json.Number `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("query: %v: %s", err, raw)
	}
	if len(r.Results) != 1 || len(r.Results[0].Series) != 1 || len(r.Results[0].Series[0].Values) != 1 {
		t.Fatalf("query returned %s, want one point", raw)
	}
	row := r.Results[0].Series[0].Values[0]
	if row[0] != "1767323045000000000" || row[1] != "21.5" {
		t.Errorf("point = %v, want [1767323045000000000 21.5]", row)
	}
}

// TestInfluxDB2: the 2.x API subset — token-authenticated /api/v2/write,
// the 1.x-compatible /query, and the `influx ping` healthcheck.
func TestInfluxDB2(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	in := e.InfluxDB2(t)
	write := func(token, org string) int {
		q := url.Values{"org": {org}, "bucket": {in.Database}, "precision": {"ns"}}
		req, _ := http.NewRequest(http.MethodPost, in.URL+"/api/v2/write?"+q.Encode(), strings.NewReader("readings,device=d2 t=7.25 1767323045000000000\n"))
		req.Header.Set("Authorization", "Token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := write("wrong", in.Org); got != http.StatusUnauthorized {
		t.Errorf("write with a wrong token: %d, want 401", got)
	}
	if got := write(in.Token, "other-org"); got != http.StatusNotFound {
		t.Errorf("write to an unknown org: %d, want 404", got)
	}
	if got := write(in.Token, in.Org); got != http.StatusNoContent {
		t.Fatalf("write: %d, want 204", got)
	}
	q := url.Values{"db": {in.Database}, "q": {`SELECT "t" FROM "readings"`}, "epoch": {"ns"}}
	req, _ := http.NewRequest(http.MethodGet, in.URL+"/query?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Token "+in.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "[1767323045000000000,7.25]") {
		t.Errorf("query: %s %s", resp.Status, body)
	}
	if out := e.Docker(t, "exec", in.ID, "influx", "ping"); strings.TrimSpace(out) != "OK" {
		t.Errorf("influx ping printed %q", out)
	}
}

func TestMongoDB(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	m := e.MongoDB(t)
	c := ctx(t)
	client, err := mongo.Connect(options.Client().ApplyURI(m.URI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	coll := client.Database("myt").Collection("readings")
	if _, err := coll.InsertOne(c, bson.D{{Key: "_id", Value: "m1"}, {Key: "device", Value: "d1"}, {Key: "t", Value: 21.5}}); err != nil {
		t.Fatal(err)
	}
	// A second insert of the same _id is refused: idempotent writes rely on it.
	if _, err := coll.InsertOne(c, bson.D{{Key: "_id", Value: "m1"}}); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("duplicate _id insert: err = %v, want a duplicate key error", err)
	}
	var got struct {
		Device string  `bson:"device"`
		T      float64 `bson:"t"`
	}
	if err := coll.FindOne(c, bson.D{{Key: "device", Value: "d1"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Device != "d1" || got.T != 21.5 {
		t.Errorf("found %+v", got)
	}
}

// TestMongoDBAuth: with the upstream image's root-user variables the
// server enforces SCRAM authentication, the user living in "admin".
func TestMongoDBAuth(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	m := e.MongoDB(t, testenv.WithEnv("MONGO_INITDB_ROOT_USERNAME", "myt"), testenv.WithEnv("MONGO_INITDB_ROOT_PASSWORD", "s3cret-pw"))
	c := ctx(t)
	insert := func(uri string) error {
		client, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			return err
		}
		defer client.Disconnect(context.Background())
		_, err = client.Database("myt").Collection("readings").InsertOne(c, bson.D{{Key: "t", Value: 1}})
		return err
	}
	host := strings.TrimPrefix(m.URI, "mongodb://")
	if err := insert(m.URI); err == nil {
		t.Error("insert without credentials succeeded")
	}
	if err := insert("mongodb://myt:wrong@" + host + "?authSource=admin"); err == nil {
		t.Error("insert with a wrong password succeeded")
	}
	if err := insert("mongodb://myt:s3cret-pw@" + host + "myt?authSource=admin"); err != nil {
		t.Errorf("insert with the root user: %v", err)
	}
	if out := e.Docker(t, "exec", m.ID, "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"); strings.TrimSpace(out) != "1" {
		t.Errorf("mongosh healthcheck stand-in printed %q", out)
	}
	// The user survives a restart (setup runs only on a new data dir).
	m.Stop(t)
	m.Start(t)
	if err := insert("mongodb://myt:s3cret-pw@" + host + "myt?authSource=admin"); err != nil {
		t.Errorf("insert after restart: %v", err)
	}
}

// TestAnsibleComposeOnSSHHost runs a playbook over SSH against a fresh test
// host; the playbook starts a compose project (a python http.server from
// the local python image) on the private engine, and the test reaches it.
func TestAnsibleComposeOnSSHHost(t *testing.T) {
	e := testenv.Require(t)
	_, err := exec.LookPath("ansible-playbook")
	testenv.Need(t, "ansible-playbook", err == nil, "apt-get install ansible-core, or run `scripts/testenv up`")
	h := e.SSHHost(t)
	if h.Name == "" || h.HostAddr == "" || h.Port != 22 || h.User != "root" || h.KeyFile == "" || h.KnownHosts == "" {
		t.Fatalf("SSH test host = %+v: a field the script prints was not read", *h)
	}

	// The host really is another machine on the network.
	if out := h.Run(t, "ip -4 -o addr show dev eth0"); !strings.Contains(out, " "+h.Addr+"/") {
		t.Fatalf("eth0 on the test host: %q, want address %s", out, h.Addr)
	}

	dir := t.TempDir()
	token := fmt.Sprintf("myt-%d", time.Now().UnixNano())
	port := freeLoopbackPort(t)
	project := "testenv-" + strings.ToLower(strings.ReplaceAll(token, "-", ""))
	remote := "/tmp/" + project
	compose := fmt.Sprintf(`services:
  web:
    image: %s
    working_dir: /srv
    command: ["sh", "-c", "printf '%%s' \"$$TOKEN\" > index.html && exec python3 -m http.server 8000"]
    environment:
      TOKEN: %s
    ports:
      - "127.0.0.1:%d:8000"
`, e.Image("python"), token, port)
	playbook := fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - name: project directory
      ansible.builtin.file: {path: %[1]s, state: directory, mode: "0700"}
    - name: compose file
      ansible.builtin.copy: {dest: %[1]s/compose.yaml, content: %[2]q, mode: "0600"}
    - name: docker compose up
      ansible.builtin.command: {cmd: docker compose -p %[3]s up -d, chdir: %[1]s}
`, remote, compose, project)
	if err := os.WriteFile(filepath.Join(dir, "play.yml"), []byte(playbook), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := h.Inventory(t, dir, "target")
	t.Cleanup(func() {
		_, _ = e.DockerCmd(context.Background(), "compose", "-p", project, "down", "-v").CombinedOutput()
		_ = os.RemoveAll(remote)
	})

	cmd := exec.Command("ansible-playbook", "-i", inv, filepath.Join(dir, "play.yml"))
	cmd.Dir = dir
	// Only the test's own settings: the docker engine comes from the test
	// host's sshd (SetEnv), as a real target brings its own.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "target") || !strings.Contains(string(out), "changed=") {
		t.Fatalf("ansible-playbook output lacks the recap:\n%s", out)
	}

	// The project runs on the private engine...
	if ps := e.Docker(t, "compose", "-p", project, "ps", "--format", "{{.Service}} {{.State}}"); !strings.Contains(ps, "web running") {
		t.Fatalf("compose ps on the private engine: %q", ps)
	}
	// ...and answers on the port it published.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != token {
				t.Fatalf("service answered %q, want %q", b, token)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service on 127.0.0.1:%d did not answer: %v", port, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
