package worker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/worker/source"
)

// envInt reads a test size from the environment. The full runs:
// MYT_FAULT_MESSAGES=50000.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// mytBinary is the real myt binary, built once per test run.
func mytBinary(t *testing.T) string { return testenv.MytBinary(t) }

// proc is the worker binary running as a child process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startBinary(t *testing.T, cfg string) *proc {
	t.Helper()
	cmd := exec.Command(mytBinary(t), "worker", "--config", cfg, "--log-format", "text", "--log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if testing.Verbose() {
				t.Log("worker: " + sc.Text())
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill SIGKILLs the worker and its Python child (the process group).
func (p *proc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits for the drain to finish.
func (p *proc) term(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		t.Error("worker did not stop within 40s of SIGTERM")
		p.kill()
	}
}

// pgCounts returns rows and distinct sequence numbers in a typed table.
func pgCounts(t *testing.T, dsn, table string) (rows, distinct int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return -1, -1
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), count(DISTINCT "count") FROM %q`, table)).Scan(&rows, &distinct); err != nil {
		return -1, -1
	}
	return rows, distinct
}

func waitCount(t *testing.T, dsn, table string, want int, within time.Duration) (int, int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rows, distinct := pgCounts(t, dsn, table)
		if rows >= want || time.Now().After(deadline) {
			return rows, distinct
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitQueue waits until a worker consumes from queue. The worker binds
// the queue before it consumes, so from then on a publish is routed; the
// queue merely existing is not enough (a worker killed between declaring
// and binding leaves every later publish unroutable).
func waitQueue(t *testing.T, b broker, queue string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := amqp.Dial(b.AMQPURL)
		if err == nil {
			var q amqp.Queue
			ch, err := conn.Channel()
			if err == nil {
				q, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
			}
			conn.Close()
			if err == nil && q.Consumers > 0 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no worker consumed from queue %s within 60s", queue)
}

func cleanupQueues(t *testing.T, b broker, top topology) {
	t.Cleanup(func() {
		conn, err := amqp.Dial(b.AMQPURL)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			ch.QueueDelete(top.Queue, false, false, false)
			ch.QueueDelete(top.Dead, false, false, false)
		}
	})
}

// TestFaultKill: the worker binary is SIGKILLed 3 times while messages
// flow; afterwards every published message is stored exactly once.
func TestFaultKill(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	n := envInt("MYT_FAULT_MESSAGES", 5000)
	top := newTopology()
	cleanupQueues(t, b, top)
	cfg := writeConfig(t, b, db, top, typedFields, "", "")
	// A first run declares the queue; then a backlog of half the messages
	// is published while no worker runs, and the other half while the
	// worker is being killed.
	p := startBinary(t, cfg)
	waitQueue(t, b, top.Queue)
	p.kill()
	publishAMQP(t, b, top.Prefix, seqRange(0, n/2), jsonBody)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for start := n / 2; start < n; start += 500 {
			publishAMQP(t, b, top.Prefix, seqRange(start, min(start+500, n)), jsonBody)
		}
	}()
	p = startBinary(t, cfg)
	kills := 0
	for k := 1; k <= 3; k++ {
		rows, _ := waitCount(t, db.DSN, top.Table, k*n/4, 5*time.Minute)
		p.kill()
		kills++
		t.Logf("SIGKILL %d at %d rows stored", k, rows)
		time.Sleep(300 * time.Millisecond)
		p = startBinary(t, cfg)
	}
	<-pubDone
	rows, distinct := waitCount(t, db.DSN, top.Table, n, 5*time.Minute)
	time.Sleep(time.Second) // anything late would show as a duplicate
	rows, distinct = pgCounts(t, db.DSN, top.Table)
	p.term(t)
	t.Logf("published %d, SIGKILLs %d, stored %d rows, distinct %d, lost %d, duplicates %d", n, kills, rows, distinct, n-distinct, rows-distinct)
	if distinct != n || rows != n {
		t.Errorf("stored %d rows (%d distinct) for %d published", rows, distinct, n)
	}
}

// TestFaultDatabaseDown: the database is stopped for 20 s mid-run; the
// worker pauses, and stores everything once it is back.
func TestFaultDatabaseDown(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	testenv.Need(t, "a database the test can stop", db.Stop != nil, "run `scripts/testenv up` (a database on the host cannot be stopped by the test)")
	n := envInt("MYT_FAULT_DB_MESSAGES", 4000)
	down := time.Duration(envInt("MYT_FAULT_DB_DOWN_SECONDS", 20)) * time.Second
	top := newTopology()
	cleanupQueues(t, b, top)
	w := startWorker(t, writeConfig(t, b, db, top, typedFields, "", ""))
	waitQueue(t, b, top.Queue)
	publishAMQP(t, b, top.Prefix, seqRange(0, n/2), jsonBody)
	before, _ := waitCount(t, db.DSN, top.Table, n/4, time.Minute)
	db.Stop(t)
	stopped := time.Now()
	publishAMQP(t, b, top.Prefix, seqRange(n/2, n), jsonBody)
	time.Sleep(time.Until(stopped.Add(down / 2)))
	readyErr := w.Ready(context.Background())
	time.Sleep(time.Until(stopped.Add(down)))
	db.Start(t)
	rows, distinct := waitCount(t, db.DSN, top.Table, n, 3*time.Minute)
	time.Sleep(500 * time.Millisecond)
	rows, distinct = pgCounts(t, db.DSN, top.Table)
	t.Logf("published %d, database down %s (at %d rows stored), stored %d rows, distinct %d, lost %d, duplicates %d; readyz while down: %v",
		n, down, before, rows, distinct, n-distinct, rows-distinct, readyErr)
	if distinct != n || rows != n {
		t.Errorf("stored %d rows (%d distinct) for %d published", rows, distinct, n)
	}
	if readyErr == nil {
		t.Error("worker reported ready while the database was down")
	}
}

const poisonHandler = `
import time
def process(msg):
    p = msg["payload"]
    if p.get("boom"):
        raise RuntimeError("boom in message %d" % p["count"])
    if p.get("note") == "hang":
        time.sleep(3600)
    return p
`

// TestPoison: 1% malformed JSON and 1% handler exceptions go to the dead
// queue with their reasons; everything else is stored. Two messages also
// make the handler hang: each is dead-lettered after handler.timeout and
// the handler restarted.
func TestPoison(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	n := envInt("MYT_POISON_MESSAGES", 3000)
	top := newTopology()
	cleanupQueues(t, b, top)
	startWorker(t, writeConfig(t, b, db, top, typedFields, poisonHandler, ""))
	waitQueue(t, b, top.Queue)
	want := map[string]string{} // body -> reason
	good := 0
	body := func(s int) []byte {
		switch s % 100 {
		case 37:
			return []byte(fmt.Sprintf(`{"count": %d, "temp": `, s))
		case 73:
			p := makePayload(s)
			p.Boom = true
			return jsonBodyOf(p)
		}
		if s == 500 || s == 1500 {
			p := makePayload(s)
			p.Extra = "hang"
			return jsonBodyOf(p)
		}
		return jsonBody(s)
	}
	for s := 0; s < n; s++ {
		switch {
		case s%100 == 37:
			want[string(body(s))] = "invalid-json"
		case s%100 == 73:
			want[string(body(s))] = "handler-error"
		case s == 500 || s == 1500:
			want[string(body(s))] = "handler-timeout"
		default:
			good++
		}
	}
	publishAMQP(t, b, top.Prefix, seqRange(0, n), body)
	rows, distinct := waitCount(t, db.DSN, top.Table, good, 2*time.Minute)
	// Read the dead queue.
	conn, err := amqp.Dial(b.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	got := map[string]string{}
	details := map[string]int{}
	deadline := time.Now().Add(time.Minute)
	for len(got) < len(want) && time.Now().Before(deadline) {
		d, ok, err := ch.Get(top.Dead, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		reason, _ := d.Headers[source.HeaderReason].(string)
		detail, _ := d.Headers[source.HeaderError].(string)
		if _, dup := got[string(d.Body)]; dup {
			t.Errorf("message dead-lettered twice: %s", d.Body)
		}
		got[string(d.Body)] = reason
		if reason == "handler-error" && strings.Contains(detail, "RuntimeError: boom in message") {
			details["handler-error with text"]++
		}
		if rk, _ := d.Headers[source.HeaderRoutingKey].(string); !strings.HasPrefix(rk, top.Prefix+".") {
			t.Errorf("dead message lost its routing key: %q", rk)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if d, ok, _ := ch.Get(top.Dead, true); ok {
		t.Errorf("unexpected extra dead message: %s %v", d.Body, d.Headers)
	}
	counts := map[string]int{}
	for body, reason := range want {
		if got[body] != reason {
			t.Errorf("message %s: dead reason %q, want %q", body, got[body], reason)
		}
		counts[reason]++
	}
	for body := range got {
		if _, ok := want[body]; !ok {
			t.Errorf("good message dead-lettered: %s (%s)", body, got[body])
		}
	}
	rows, distinct = pgCounts(t, db.DSN, top.Table)
	t.Logf("published %d: malformed %d, raising %d, hanging %d, good %d; dead-lettered %d (%v, %v); stored %d rows (%d distinct)",
		n, counts["invalid-json"], counts["handler-error"], counts["handler-timeout"], good, len(got), counts, details, rows, distinct)
	if rows != good || distinct != good {
		t.Errorf("stored %d rows (%d distinct), want %d", rows, distinct, good)
	}
	if details["handler-error with text"] != counts["handler-error"] {
		t.Errorf("handler errors without the exception text: %v", details)
	}
}

// TestFaultBrokerRestart: RabbitMQ is stopped mid-run and started again;
// the worker reconnects with backoff and everything published is stored
// once.
func TestFaultBrokerRestart(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	n := envInt("MYT_FAULT_BROKER_MESSAGES", 4000)
	top := newTopology()
	w := startWorker(t, writeConfig(t, b, db, top, typedFields, "", ""))
	waitQueue(t, b, top.Queue)
	publishAMQP(t, b, top.Prefix, seqRange(0, n/2), jsonBody)
	before, _ := waitCount(t, db.DSN, top.Table, n/4, time.Minute)
	b.Stop(t)
	time.Sleep(2 * time.Second)
	readyErr := w.Ready(context.Background())
	b.Start(t)
	publishAMQP(t, b, top.Prefix, seqRange(n/2, n), jsonBody)
	rows, distinct := waitCount(t, db.DSN, top.Table, n, 3*time.Minute)
	time.Sleep(500 * time.Millisecond)
	rows, distinct = pgCounts(t, db.DSN, top.Table)
	t.Logf("published %d, broker stopped at %d rows stored and restarted; stored %d rows, distinct %d, lost %d, duplicates %d; readyz while down: %v",
		n, before, rows, distinct, n-distinct, rows-distinct, readyErr)
	if distinct != n || rows != n {
		t.Errorf("stored %d rows (%d distinct) for %d published", rows, distinct, n)
	}
	if readyErr == nil {
		t.Error("worker reported ready while the broker was down")
	}
}
