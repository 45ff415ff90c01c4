package worker_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/myt-iot/myt/worker"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := worker.ParseConfig([]byte(`
amqp:
  urls: ["amqp://myt@127.0.0.1:5672/"]
  passwordFile: /run/secrets/amqp
database:
  kind: timescaledb
  dsnFile: /run/secrets/dsn
  fields: {temp: float, n: int, ok: bool, name: string}
batch:
  maxWait: 50ms
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.AMQP.Queue != "myt.ingest" || c.AMQP.DeadQueue != "myt.dead" || c.AMQP.Exchange != "amq.topic" {
		t.Errorf("queue defaults: %+v", c.AMQP)
	}
	if c.Batch.Size != worker.DefaultBatchSize || c.Batch.MaxWait.D() != 50*time.Millisecond {
		t.Errorf("batch: %+v", c.Batch)
	}
	if c.Handler.Timeout.D() != worker.DefaultHandlerTimeout || c.Database.Table != "measurements" {
		t.Errorf("defaults: %+v %+v", c.Handler, c.Database)
	}
	if c.RoutingPattern() != "myt.#" || !c.DeclareTopology() {
		t.Errorf("routing %q", c.RoutingPattern())
	}
}

func TestParseConfigErrorsNameKey(t *testing.T) {
	base := "amqp: {urls: [\"amqp://h/\"]}\ndatabase: {kind: mysql, dsnFile: /x}\n"
	tests := []struct{ name, yaml, key string }{
		{"unknown top", base + "bogus: 1\n", "bogus"},
		{"unknown nested", "amqp: {urls: [\"amqp://h/\"], qeue: x}\ndatabase: {kind: mysql, dsnFile: /x}\n", "qeue"},
		{"bad kind", "amqp: {urls: [\"amqp://h/\"]}\ndatabase: {kind: oracle, dsnFile: /x}\n", "database.kind"},
		{"no urls", "database: {kind: mysql, dsnFile: /x}\n", "amqp.urls"},
		{"password in url", "amqp: {urls: [\"amqp://u:secret@h/\"]}\ndatabase: {kind: mysql, dsnFile: /x}\n", "amqp.urls[0]"},
		{"bad field type", base + "database: {kind: mysql, dsnFile: /x, fields: {t: double}}\n", ""},
		{"field type", "amqp: {urls: [\"amqp://h/\"]}\ndatabase: {kind: mysql, dsnFile: /x, fields: {t: double}}\n", "database.fields.t"},
		{"reserved field", "amqp: {urls: [\"amqp://h/\"]}\ndatabase: {kind: mysql, dsnFile: /x, fields: {ts: int}}\n", "database.fields.ts"},
		{"bad duration", base + "batch: {maxWait: soon}\n", "maxWait"},
		{"prefetch < batch", base + "amqp: {urls: [\"amqp://h/\"], prefetch: 10}\n", ""},
		{"no dsn", "amqp: {urls: [\"amqp://h/\"]}\ndatabase: {kind: mysql}\n", "database.dsnFile"},
		{"listen", base + "http: {listen: nope}\n", "http.listen"},
		{"retention", "amqp: {urls: [\"amqp://h/\"]}\ndatabase: {kind: mysql, dsnFile: /x, retentionDays: -1}\n", "database.retentionDays"},
		{"retention check", "amqp: {urls: [\"amqp://h/\"]}\ndatabase: {kind: mysql, dsnFile: /x, retentionEvery: 10ms}\n", "database.retentionEvery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := worker.ParseConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error for %q", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name %q", err, tt.key)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	dsn := filepath.Join(dir, "dsn")
	os.WriteFile(pw, []byte("s3cr/t\n"), 0o600)
	os.WriteFile(dsn, []byte("u:p@tcp(127.0.0.1:3306)/myt\n"), 0o600)
	c, err := worker.ParseConfig([]byte("amqp: {urls: [\"amqp://myt@127.0.0.1:5672/vh\"], passwordFile: " + pw + "}\ndatabase: {kind: mysql, dsnFile: " + dsn + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	urls, err := c.BrokerURLs()
	if err != nil || len(urls) != 1 || urls[0] != "amqp://myt:s3cr%2Ft@127.0.0.1:5672/vh" {
		t.Errorf("urls %q %v", urls, err)
	}
	d, err := c.DSN()
	if err != nil || d != "u:p@tcp(127.0.0.1:3306)/myt" {
		t.Errorf("dsn %q %v", d, err)
	}
}

func TestSampleConfigParses(t *testing.T) {
	if _, err := worker.LoadConfig("testdata/worker.sample.yaml"); err != nil {
		t.Fatal(err)
	}
}

// The bundle renderer writes worker.yaml by marshalling a Config: that must
// parse back unchanged.
func TestConfigRoundTrip(t *testing.T) {
	c, err := worker.LoadConfig("testdata/worker.sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name string
		f    func(any) ([]byte, error)
	}{{"yaml", yaml.Marshal}, {"json", json.Marshal}} {
		b, err := m.f(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := worker.ParseConfig(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", m.name, err, b)
		}
		b2, _ := m.f(c2)
		if string(b) != string(b2) {
			t.Errorf("%s round trip differs:\n%s\n---\n%s", m.name, b, b2)
		}
		if c2.Batch.MaxWait.D() != 200*time.Millisecond {
			t.Errorf("%s maxWait %v", m.name, c2.Batch.MaxWait.D())
		}
	}
}
