package render_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/internal/testenv"
)

// mqttPublish is a minimal MQTT 3.1.1 client (CONNECT, PUBLISH QoS 1,
// DISCONNECT) over TLS that trusts only the platform CA; it runs inside
// the worker container, whose image has python3.
const mqttPublish = `import os, socket, ssl, struct, sys, json
def s16(s): b = s.encode(); return struct.pack('!H', len(b)) + b
def rl(n):
    out = b''
    while True:
        d = n % 128; n //= 128
        out += bytes([d | (0x80 if n else 0)])
        if not n: return out
ctx = ssl.create_default_context(cafile='/etc/myt/tls/ca.crt')
s = ctx.wrap_socket(socket.create_connection(('rabbitmq', 8883), timeout=10), server_hostname='rabbitmq')
vh = b'\x00\x04MQTT\x04\xc2' + struct.pack('!H', 60)
pl = s16('e2e') + s16('myt-device') + s16(os.environ['PW'])
s.sendall(b'\x10' + rl(len(vh) + len(pl)) + vh + pl)
ack = s.recv(4)
if len(ack) < 4 or ack[3] != 0: print('refused', ack.hex()); sys.exit(3)
body = s16('myt/dev-e2e/env') + struct.pack('!H', 1) + json.dumps({"temperature": 21.456, "humidity": 40.5}).encode()
s.sendall(b'\x32' + rl(len(body)) + body)
if s.recv(4)[:1] != b'\x40': sys.exit('no PUBACK')
s.sendall(b'\xe0\x00'); s.close(); print('published')
`

// TestPlatformEndToEnd starts a rendered platform (RabbitMQ, the
// database, the worker; Grafana has no local image) on the test
// environment's engine with its local images, publishes over MQTTS as the
// rendered device user, and reads the row back from the database: the
// rendered RabbitMQ config, definitions, TLS material, secret files and
// worker.yaml all work together. A wrong password is refused.
func TestPlatformEndToEnd(t *testing.T) {
	e := testenv.Require(t)
	testenv.Need(t, "root", os.Geteuid() == 0, "the secret files are chowned to the services' users")
	for _, db := range []string{"timescaledb", "mysql"} {
		t.Run(db, func(t *testing.T) { platformEndToEnd(t, e, db) })
	}
}

func platformEndToEnd(t *testing.T, e *testenv.Env, db string) {
	d, err := design.Parse([]byte(`apiVersion: myt/v1
kind: Platform
metadata: {name: e2e}
spec:
  target: {provider: local}
  database: {kind: ` + db + `, fields: {temperature: float, humidity: float}}
  broker: {mqtt: true, amqp: true, tls: true, plaintext: false}
  processing:
    handler: |
      def process(msg):
          out = dict(msg["payload"])
          out["temperature"] = round(float(out["temperature"]), 2)
          return out
`))
	if err != nil {
		t.Fatal(err)
	}
	b := mustRender(t, d)
	root := writeBundle(t, b)
	dir := filepath.Join(root, "platform")
	data := filepath.Join(root, "data")
	// What Ansible's platform role (or the local deploy) does: owners.
	for _, line := range strings.Split(string(b.File("platform/owners.txt").Data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		uid, _ := strconv.Atoi(f[2])
		gid := uid
		if len(f) == 4 {
			gid, _ = strconv.Atoi(f[3])
		}
		p := filepath.Join(dir, "secrets", f[1])
		if f[0] == "volume" {
			p = filepath.Join(data, f[1])
			if err := os.MkdirAll(p, 0o750); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// No host ports: other tests may hold 5671/8883/15672 here.
	override := filepath.Join(root, "test.override.yaml")
	if err := os.WriteFile(override, []byte("services:\n  rabbitmq:\n    ports: !reset []\n  worker:\n    ports: !reset []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("myt-render-%s-%d", db, time.Now().UnixNano()%1e6)
	compose := func(timeout time.Duration, env []string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := e.DockerCmd(ctx, append([]string{"compose", "-p", project, "-f", "compose.yaml", "-f", override}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Env, "MYT_DATA_DIR="+data)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = compose(2*time.Minute, nil, "down", "-v", "--remove-orphans") })
	services := []string{"rabbitmq", db, "worker"}
	if out, err := compose(2*time.Minute, nil, append([]string{"up", "--no-start"}, services...)...); err != nil {
		t.Fatalf("compose up --no-start: %v\n%s", err, out)
	}
	allowBridge(t, e, project+"_default")
	if out, err := compose(6*time.Minute, nil, append([]string{"up", "--detach", "--wait", "--wait-timeout", "300"}, services...)...); err != nil {
		logs, _ := compose(time.Minute, nil, "logs", "--tail", "40")
		t.Fatalf("compose up --wait: %v\n%s\n%s", err, out, logs)
	}
	secret := func(name string) string {
		v, err := os.ReadFile(filepath.Join(root, "secrets.d", name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	if out, err := compose(time.Minute, nil, "exec", "-T", "rabbitmq", "rabbitmq-diagnostics", "-q", "listeners"); err != nil || strings.Contains(out, "port: 1883") || !strings.Contains(out, "port: 8883") {
		t.Errorf("listeners (want 8883, not 1883): %v\n%s", err, out)
	}
	script := filepath.Join(dir, "worker", "mqtt_publish.py")
	if err := os.WriteFile(script, []byte(mqttPublish), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := compose(time.Minute, nil, "cp", script, "worker:/tmp/mqtt_publish.py"); err != nil {
		t.Fatalf("compose cp: %v\n%s", err, out)
	}
	if out, err := compose(time.Minute, []string{"PW=not-the-password"}, "exec", "-T", "-e", "PW", "worker", "python3", "/tmp/mqtt_publish.py"); err == nil || !strings.Contains(out, "refused") {
		t.Errorf("a wrong device password was not refused: %v\n%s", err, out)
	}
	if out, err := compose(time.Minute, []string{"PW=" + secret("rabbitmq_device_password")}, "exec", "-T", "-e", "PW", "worker", "python3", "/tmp/mqtt_publish.py"); err != nil {
		t.Fatalf("publish over MQTTS: %v\n%s", err, out)
	}

	query := map[string][]string{
		"timescaledb": {"exec", "-T", "-e", "PGPASSWORD", "timescaledb", "psql", "-h", "127.0.0.1", "-U", "myt", "-d", "myt", "-At", "-c", "SELECT device, temperature, humidity FROM measurements"},
		"mysql":       {"exec", "-T", "-e", "MYSQL_PWD", "mysql", "mysql", "-h", "127.0.0.1", "-u", "myt", "myt", "-N", "-B", "-e", "SELECT device, temperature, humidity FROM measurements"},
	}[db]
	env := []string{"PGPASSWORD=" + secret("db_password"), "MYSQL_PWD=" + secret("db_password")}
	deadline := time.Now().Add(60 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, err = compose(time.Minute, env, query...)
		if err == nil && strings.Contains(out, "dev-e2e") {
			break
		}
		time.Sleep(time.Second)
	}
	row := strings.Fields(strings.ReplaceAll(strings.TrimSpace(out), "|", " "))
	if len(row) != 3 || row[0] != "dev-e2e" || row[1] != "21.46" || row[2] != "40.5" {
		logs, _ := compose(time.Minute, nil, "logs", "--tail", "30", "worker")
		t.Fatalf("row in %s: %v %q\nworker logs:\n%s", db, err, out, logs)
	}

	// Each running service's secret files are readable by the uid its
	// image reads them as, and by no other.
	cf := loadCompose(t, b)
	for _, svc := range services {
		for _, name := range cf.Services[svc].Secrets {
			uid, ok := secretReader(svc, cf.Services[svc].User, name)
			if !ok {
				t.Errorf("%s: no known reader for secret %s", svc, name)
				continue
			}
			if out, err := compose(time.Minute, nil, "exec", "-T", "-u", fmt.Sprint(uid), svc, "cat", "/run/secrets/"+name); err != nil {
				t.Errorf("%s: uid %d cannot read secret %s: %v\n%s", svc, uid, name, err, firstLine(out))
			}
			if out, err := compose(time.Minute, nil, "exec", "-T", "-u", "4242", svc, "cat", "/run/secrets/"+name); err == nil {
				t.Errorf("%s: uid 4242 reads secret %s (%d bytes)", svc, name, len(out))
			}
		}
	}

	// Grafana's datasource credentials (its user, its secret file) read
	// the data, the table the worker made after the database's init
	// included, and can change nothing.
	var dsDoc struct {
		Datasources []struct {
			User           string            `yaml:"user"`
			SecureJSONData map[string]string `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b.File("platform/grafana/provisioning/datasources/myt.yaml").Data, &dsDoc); err != nil || len(dsDoc.Datasources) != 1 {
		t.Fatalf("datasource: %v", err)
	}
	ds := dsDoc.Datasources[0]
	file, ok := strings.CutPrefix(ds.SecureJSONData["password"], "$__file{/run/secrets/")
	if !ok {
		t.Fatalf("datasource password %q: not a secret file", ds.SecureJSONData["password"])
	}
	gpw, err := os.ReadFile(filepath.Join(dir, "secrets", strings.TrimSuffix(file, "}")))
	if err != nil {
		t.Fatal(err)
	}
	genv := []string{"PGPASSWORD=" + strings.TrimSpace(string(gpw)), "MYSQL_PWD=" + strings.TrimSpace(string(gpw))}
	asGrafana := func(sql string) (string, error) {
		q := map[string][]string{
			"timescaledb": {"exec", "-T", "-e", "PGPASSWORD", "timescaledb", "psql", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", ds.User, "-d", "myt", "-At", "-c", sql},
			"mysql":       {"exec", "-T", "-e", "MYSQL_PWD", "mysql", "mysql", "-h", "127.0.0.1", "-u", ds.User, "myt", "-N", "-B", "-e", sql},
		}[db]
		return compose(time.Minute, genv, q...)
	}
	if out, err := asGrafana("SELECT device FROM measurements"); err != nil || strings.TrimSpace(out) != "dev-e2e" {
		t.Errorf("Grafana's user %q cannot read measurements: %v %q", ds.User, err, out)
	}
	for _, sql := range []string{
		"DELETE FROM measurements",
		"INSERT INTO measurements (id, device, topic, ts) VALUES ('x', 'intruder', 'myt/intruder', CURRENT_TIMESTAMP)",
		"UPDATE measurements SET device = 'intruder'",
		"CREATE TABLE grafana_was_here (id int)",
		"DROP TABLE measurements",
	} {
		out, err := asGrafana(sql)
		if err == nil {
			t.Errorf("Grafana's user %q may %s", ds.User, sql)
		} else if o := strings.ToLower(out); !strings.Contains(o, "denied") && !strings.Contains(o, "must be owner") {
			t.Errorf("Grafana's user %q: %s failed for another reason than a refused privilege: %s", ds.User, sql, out)
		}
	}
	if out, err := compose(time.Minute, env, query...); err != nil || !strings.Contains(out, "dev-e2e") || strings.Contains(out, "intruder") {
		t.Errorf("after Grafana's attempts the data changed: %v %q", err, out)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// allowBridge lets containers on the compose network reach each other
// when the host's FORWARD policy drops bridged traffic (the test engine
// runs with --iptables=false, so nothing else adds this rule). The rule
// names only this network's bridge and is removed at cleanup.
func allowBridge(t *testing.T, e *testenv.Env, network string) {
	t.Helper()
	id := strings.TrimSpace(e.Docker(t, "network", "inspect", "-f", "{{.Id}}", network))
	allowBridgeID(t, id)
}

func allowBridgeID(t *testing.T, id string) {
	ipt, err := exec.LookPath("iptables")
	if err != nil {
		return
	}
	pol, err := exec.Command(ipt, "-S", "FORWARD").Output()
	if err != nil || !strings.Contains(string(pol), "-P FORWARD DROP") {
		return
	}
	if len(id) < 12 {
		t.Errorf("network id %q", id)
		return
	}
	br := "br-" + id[:12]
	rule := []string{"FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", "myt-render-test", "-j", "ACCEPT"}
	if out, err := exec.Command(ipt, append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Errorf("iptables: %v %s", err, out)
		return
	}
	t.Logf("FORWARD policy is DROP: allowed traffic within %s for this test", br)
	t.Cleanup(func() { _ = exec.Command(ipt, append([]string{"-D"}, rule...)...).Run() })
}
