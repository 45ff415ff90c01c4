package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
	"github.com/myt-iot/myt/worker/sink/sinktest"
)

// broker and database are what the tests need from the test environment
// (env_test.go fills them from internal/testenv).
type broker struct {
	AMQPURL, MQTTAddr, User, Password string
	Stop, Kill, Start                 func(t *testing.T)
}

type database struct {
	Kind  string
	DSN   string
	Stop  func(t *testing.T)
	Start func(t *testing.T)
}

// topology gives each test its own queue names and topic prefix, so tests
// sharing one broker do not see each other's messages.
type topology struct {
	Prefix, Queue, Dead, Table string
}

func newTopology() topology {
	n := rand.Uint32()
	return topology{
		Prefix: fmt.Sprintf("t%08x", n), Queue: fmt.Sprintf("myt.ingest.%08x", n),
		Dead: fmt.Sprintf("myt.dead.%08x", n), Table: fmt.Sprintf("m%08x", n),
	}
}

var typedFields = map[string]string{"temp": "float", "count": "int", "ok": "bool", "name": "string"}

// writeConfig writes worker.yaml and its secret files into a temp dir.
func writeConfig(t *testing.T, b broker, db database, top topology, fields map[string]string, handlerCode string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := write("amqp_password", b.Password)
	dsn := write("dsn", db.DSN)
	tok := write("token", "test-token")
	fs := ""
	if len(fields) > 0 {
		var parts []string
		for k, v := range fields {
			parts = append(parts, k+": "+v)
		}
		sort.Strings(parts)
		fs = "  fields: {" + strings.Join(parts, ", ") + "}\n"
	}
	h := ""
	if handlerCode != "" {
		h = "handler:\n  path: " + write("handler.py", handlerCode) + "\n  timeout: 3s\n"
	}
	cfg := fmt.Sprintf(`topicPrefix: %s
amqp:
  urls: [%q]
  passwordFile: %s
  queue: %s
  deadQueue: %s
batch:
  size: 200
  maxWait: 50ms
database:
  kind: %s
  dsnFile: %s
  table: %s
%s%shttp:
  listen: "127.0.0.1:0"
  tokenFile: %s
retry:
  min: 200ms
  max: 2s
%s`, top.Prefix, amqpURLWithoutPassword(t, b.AMQPURL), pw, top.Queue, top.Dead, db.Kind, dsn, top.Table, fs, h, tok, extra)
	return write("worker.yaml", cfg)
}

func amqpURLWithoutPassword(t *testing.T, raw string) string {
	t.Helper()
	i := strings.Index(raw, "://")
	at := strings.LastIndex(raw, "@")
	if i < 0 || at < 0 {
		return raw
	}
	user := raw[i+3 : at]
	if c := strings.Index(user, ":"); c >= 0 {
		user = user[:c]
	}
	return raw[:i+3] + user + raw[at:]
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return sinktest.Logger(t)
	}
	return slog.New(slog.DiscardHandler)
}

// startWorker runs a worker in this process until the test ends.
func startWorker(t *testing.T, cfgPath string) *worker.Worker {
	t.Helper()
	cfg, err := worker.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dsn, err := cfg.DSN()
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	s, err := worker.NewSink(cfg.Database.Kind, sink.Options{DSN: dsn, Table: cfg.Database.Table, Fields: cfg.Database.Fields, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(cfg, s, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return w
}

// reader reads rows back from the database through a fresh sink.
func reader(t *testing.T, db database, table string, fields map[string]string) sink.Exporter {
	t.Helper()
	s, err := worker.NewSink(db.Kind, sink.Options{DSN: db.DSN, Table: table, Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(sink.Exporter)
}

func readAll(t *testing.T, ex sink.Exporter) []record.Record {
	t.Helper()
	var out []record.Record
	for attempt := 0; ; attempt++ {
		out = out[:0]
		err := ex.Export(context.Background(), sink.Query{}, func(r record.Record) error { out = append(out, r); return nil })
		if err == nil {
			return out
		}
		if attempt > 30 {
			t.Fatalf("read back: %v", err)
		}
		time.Sleep(time.Second)
	}
}

// waitRows polls until the table holds want rows (or the deadline).
func waitRows(t *testing.T, ex sink.Exporter, want int, within time.Duration) []record.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := readAll(t, ex)
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// payload is what the tests publish; seq identifies a message.
type payload struct {
	Seq   int     `json:"count"`
	Temp  float64 `json:"temp"`
	OK    bool    `json:"ok"`
	Name  string  `json:"name"`
	TS    int64   `json:"ts"` // epoch milliseconds
	Boom  bool    `json:"boom,omitempty"`
	Extra string  `json:"note,omitempty"`
}

var baseTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func makePayload(seq int) payload {
	return payload{Seq: seq, Temp: float64(seq%400)/4 - 20, OK: seq%2 == 0, Name: fmt.Sprintf("sensor \"%d\", ü", seq),
		TS: baseTime.Add(time.Duration(seq) * time.Millisecond).UnixMilli()}
}

func device(seq int) string { return fmt.Sprintf("dev-%d", seq%5) }

// publishMQTT publishes seqs over MQTT QoS 1 to <prefix>/<device>/env.
func publishMQTT(t *testing.T, b broker, prefix string, seqs []int, body func(int) []byte) {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + b.MQTTAddr).SetClientID(fmt.Sprintf("test-%d", rand.Uint32())).
		SetUsername(b.User).SetPassword(b.Password).SetCleanSession(true).SetAutoReconnect(false).SetMaxResumePubInFlight(100)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect %s: %v", b.MQTTAddr, tok.Error())
	}
	defer c.Disconnect(250)
	var toks []mqtt.Token
	for _, s := range seqs {
		toks = append(toks, c.Publish(prefix+"/"+device(s)+"/env", 1, false, body(s)))
		if len(toks) >= 100 {
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					t.Fatalf("mqtt publish: %v", tok.Error())
				}
			}
			toks = toks[:0]
		}
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("mqtt publish: %v", tok.Error())
		}
	}
}

// publishAMQP publishes seqs to amq.topic with publisher confirms.
func publishAMQP(t *testing.T, b broker, prefix string, seqs []int, body func(int) []byte) {
	t.Helper()
	conn, err := amqp.Dial(b.AMQPURL)
	if err != nil {
		panic(fmt.Sprintf("amqp dial: %v", err))
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		panic(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	// Room for every message: the connection's reader blocks (5 s per
	// message in amqp091) on a full return channel, which would turn an
	// unroutable publish into a hang instead of the failure below.
	returns := ch.NotifyReturn(make(chan amqp.Return, len(seqs)))
	ctx := context.Background()
	var pending []*amqp.DeferredConfirmation
	wait := func() {
		for _, c := range pending {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			ok, err := c.WaitContext(cctx)
			cancel()
			if err != nil {
				panic("publish not confirmed within 60s")
			}
			if !ok {
				panic("publish nacked")
			}
		}
		pending = pending[:0]
		select {
		case r := <-returns:
			panic("published message unroutable (no queue bound): " + r.RoutingKey)
		default:
		}
	}
	for _, s := range seqs {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "amq.topic", prefix+"."+device(s)+".env", true, false,
			amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body(s)})
		if err != nil {
			panic(fmt.Sprintf("amqp publish: %v", err))
		}
		pending = append(pending, c)
		if len(pending) >= 500 {
			wait()
		}
	}
	wait()
}

func jsonBody(s int) []byte {
	b, _ := json.Marshal(makePayload(s))
	return b
}

func seqRange(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// checkRows asserts the rows equal what was published, field by field,
// and returns the number of distinct sequence numbers and duplicates.
func checkRows(t *testing.T, rows []record.Record, prefix string, want []int, typed bool) (distinct, dups int) {
	t.Helper()
	seen := map[int]int{}
	wantSet := map[int]bool{}
	for _, s := range want {
		wantSet[s] = true
	}
	bad := 0
	for _, r := range rows {
		c, err := record.Coerce(r.Fields["count"], "int")
		if err != nil {
			t.Fatalf("row %s: count %v: %v", r.ID, r.Fields["count"], err)
		}
		seq := int(c.(int64))
		seen[seq]++
		if !wantSet[seq] {
			t.Errorf("row for seq %d was never published", seq)
			continue
		}
		p := makePayload(seq)
		temp, _ := record.Coerce(r.Fields["temp"], "float")
		ok, _ := record.Coerce(r.Fields["ok"], "bool")
		problems := []string{}
		if r.Device != device(seq) {
			problems = append(problems, "device "+r.Device)
		}
		if r.Topic != prefix+"/"+device(seq)+"/env" {
			problems = append(problems, "topic "+r.Topic)
		}
		if !r.TS.Equal(time.UnixMilli(p.TS)) {
			problems = append(problems, fmt.Sprintf("ts %v want %v", r.TS, time.UnixMilli(p.TS).UTC()))
		}
		if temp != p.Temp {
			problems = append(problems, fmt.Sprintf("temp %v want %v", temp, p.Temp))
		}
		if ok != p.OK {
			problems = append(problems, fmt.Sprintf("ok %v", ok))
		}
		if r.Fields["name"] != p.Name {
			problems = append(problems, fmt.Sprintf("name %q want %q", r.Fields["name"], p.Name))
		}
		if _, has := r.Fields["ts"]; has {
			problems = append(problems, "ts kept as a field")
		}
		if len(problems) > 0 {
			bad++
			if bad < 5 {
				t.Errorf("seq %d: %s", seq, strings.Join(problems, "; "))
			}
		}
	}
	for _, n := range seen {
		if n > 1 {
			dups += n - 1
		}
	}
	if bad > 0 {
		t.Errorf("%d rows differ from what was published", bad)
	}
	return len(seen), dups
}

// TestEndToEnd publishes over MQTT QoS 1 and over AMQP and checks the rows
// in each database kind equal what was published, field by field, with
// typed fields and without.
func TestEndToEnd(t *testing.T) {
	b := rabbitFor(t)
	for _, kind := range []string{"postgres", "mysql", "mongodb", "influxdb"} {
		t.Run(kind, func(t *testing.T) {
			db := databaseFor(t, kind)
			for _, typed := range []bool{true, false} {
				name := kind + "/json"
				if typed {
					name = kind + "/typed"
				}
				t.Run(map[bool]string{true: "typed", false: "json"}[typed], func(t *testing.T) {
					top := newTopology()
					var fields map[string]string
					if typed {
						fields = typedFields
					}
					cleanupQueues(t, b, top)
					startWorker(t, writeConfig(t, b, db, top, fields, "", ""))
					waitQueue(t, b, top.Queue)
					const n = 150
					publishMQTT(t, b, top.Prefix, seqRange(0, n), jsonBody)
					publishAMQP(t, b, top.Prefix, seqRange(n, 2*n), jsonBody)
					// Republishing the same messages (a device resending) adds no rows.
					publishAMQP(t, b, top.Prefix, seqRange(0, 20), jsonBody)
					ex := reader(t, db, top.Table, fields)
					waitRows(t, ex, 2*n, 60*time.Second)
					time.Sleep(300 * time.Millisecond)
					rows := readAll(t, ex)
					distinct, dups := checkRows(t, rows, top.Prefix, seqRange(0, 2*n), typed)
					t.Logf("%s: published %d (MQTT QoS 1 %d, AMQP %d, 20 resent), stored %d rows, distinct %d, duplicates %d",
						name, 2*n, n, n, len(rows), distinct, dups)
					if distinct != 2*n || dups != 0 {
						t.Errorf("stored %d distinct with %d duplicates, want %d and 0", distinct, dups, 2*n)
					}
				})
			}
		})
	}
}

func jsonBodyOf(p payload) []byte {
	b, _ := json.Marshal(p)
	return b
}
