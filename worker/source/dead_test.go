package source_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/worker/source"
)

// deadFixture is a broker with a dead-letter queue holding n messages
// (bodies "0".."n-1", message ids "m0"..), and a DeadQueue on it.
type deadFixture struct {
	ch           *amqp.Channel
	ingest, dead string
	q            *source.DeadQueue
}

func newDeadFixture(t *testing.T, n int, declareIngest bool) *deadFixture {
	t.Helper()
	r := testenv.Require(t).RabbitMQ(t)
	conn, err := amqp.Dial(r.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	id := time.Now().UnixNano()
	f := &deadFixture{ch: ch, ingest: fmt.Sprintf("ingest-%d", id), dead: fmt.Sprintf("dead-%d", id)}
	quorum := amqp.Table{"x-queue-type": "quorum"}
	if _, err := ch.QueueDeclare(f.dead, true, false, false, false, quorum); err != nil {
		t.Fatal(err)
	}
	if declareIngest {
		if _, err := ch.QueueDeclare(f.ingest, true, false, false, false, quorum); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ch.QueueDelete(f.dead, false, false, false)
		ch.QueueDelete(f.ingest, false, false, false)
	})
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", f.dead, true, false, amqp.Publishing{
			MessageId: fmt.Sprintf("m%d", i), Body: []byte(fmt.Sprint(i)), DeliveryMode: amqp.Persistent,
			Headers: amqp.Table{source.HeaderReason: "handler-error", source.HeaderError: "boom",
				source.HeaderRoutingKey: fmt.Sprintf("myt.dev-%d.env", i), source.HeaderDeadAt: "2026-01-02T03:04:05.000000006Z"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if ok := c.Wait(); !ok {
			t.Fatal("nacked")
		}
	}
	src, err := source.New(source.Options{URLs: []string{r.AMQPURL}, Queue: f.ingest, DeadQueue: f.dead})
	if err != nil {
		t.Fatal(err)
	}
	if f.q, err = src.DialDead(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.q.Close() })
	return f
}

// counts returns the ready messages of a queue, waiting up to 10 s for it
// to reach want (returns and acks are asynchronous).
func (f *deadFixture) count(t *testing.T, queue string, want int) int {
	t.Helper()
	var n int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		q, err := f.ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		n = q.Messages
		if n == want || time.Now().After(deadline) {
			return n
		}
	}
}

func noLock() func() { return func() {} }

// peekBodies peeks n messages and returns the total and their bodies.
func peekBodies(t *testing.T, q *source.DeadQueue, n int) (int, string) {
	t.Helper()
	total, msgs, err := q.Peek(n)
	if err != nil {
		t.Fatal(err)
	}
	var bodies string
	for _, m := range msgs {
		bodies += string(m.Body)
	}
	return total, bodies
}

// Peek returns the oldest messages in order and leaves every message in
// the queue. A requeued message may go to the back of a quorum queue
// (RabbitMQ 3.x), so a peek at all of them keeps the order, and a peek at
// some moves those behind the others.
func TestPeek(t *testing.T) {
	f := newDeadFixture(t, 5, true)
	for round := range 2 {
		if total, bodies := peekBodies(t, f.q, 10); total != 5 || bodies != "01234" {
			t.Errorf("peek %d at all: total %d, bodies %q; want 5, \"01234\"", round, total, bodies)
		}
		if n := f.count(t, f.dead, 5); n != 5 {
			t.Errorf("peek %d: %d messages left, want 5", round, n)
		}
	}
	if total, bodies := peekBodies(t, f.q, 3); total != 5 || bodies != "012" {
		t.Errorf("peek at 3: total %d, bodies %q; want 5, \"012\"", total, bodies)
	}
	if n := f.count(t, f.dead, 5); n != 5 {
		t.Errorf("%d messages left after a peek at 3, want 5", n)
	}
	if _, bodies := peekBodies(t, f.q, 10); len(bodies) != 5 || (bodies != "01234" && bodies != "34012") {
		t.Errorf("after a peek at 3 the queue holds %q, want 01234 or (requeued to the back) 34012", bodies)
	}
}

// Replay publishes each dead letter to the ingest queue with its
// properties and original routing key, and takes it from the dead-letter
// queue only after the confirm. A crash between confirm and ack leaves it
// in both queues (replayed again later, never lost).
func TestReplayCrashAfterConfirm(t *testing.T) {
	f := newDeadFixture(t, 5, true)
	crash := errors.New("crash")
	moved, err := f.q.Replay(context.Background(), 5, 2, noLock, func() error { return crash })
	if !errors.Is(err, crash) || moved != 0 {
		t.Fatalf("replay with a crash: moved %d, err %v", moved, err)
	}
	f.q.Close() // the process dies: what was not acknowledged goes back
	if n := f.count(t, f.dead, 5); n != 5 {
		t.Errorf("after the crash the dead-letter queue holds %d, want 5", n)
	}
	if n := f.count(t, f.ingest, 2); n != 2 {
		t.Errorf("after the crash the ingest queue holds %d, want the first chunk (2)", n)
	}
	d, ok, err := f.ch.Get(f.ingest, true)
	if err != nil || !ok {
		t.Fatalf("get replayed: %v %v", ok, err)
	}
	if d.Exchange != "" || d.RoutingKey != f.ingest || d.MessageId != "m0" || string(d.Body) != "0" ||
		d.Headers[source.HeaderRoutingKey] != "myt.dev-0.env" || source.Replays(&d) != 1 ||
		d.Headers[source.HeaderReason] != nil || d.Headers[source.HeaderDeadAt] != "2026-01-02T03:04:05.000000006Z" {
		t.Errorf("replayed message: exchange %q key %q id %q body %q headers %v", d.Exchange, d.RoutingKey, d.MessageId, d.Body, d.Headers)
	}
}

// Replay moves every dead letter, in chunks; the queue is empty after it.
func TestReplay(t *testing.T) {
	f := newDeadFixture(t, 7, true)
	moved, err := f.q.Replay(context.Background(), 7, 3, noLock, nil)
	if err != nil || moved != 7 {
		t.Fatalf("replay: moved %d, err %v", moved, err)
	}
	if n := f.count(t, f.dead, 0); n != 0 {
		t.Errorf("dead-letter queue holds %d after the replay", n)
	}
	if n := f.count(t, f.ingest, 7); n != 7 {
		t.Errorf("ingest queue holds %d after the replay, want 7", n)
	}
}

// A dead letter that cannot be routed to the ingest queue (it does not
// exist) stays in the dead-letter queue.
func TestReplayUnroutable(t *testing.T) {
	f := newDeadFixture(t, 5, false)
	moved, err := f.q.Replay(context.Background(), 5, 10, noLock, nil)
	if !errors.Is(err, source.ErrNoIngestQueue) || moved != 0 {
		t.Errorf("replay into a missing queue: moved %d, err %v", moved, err)
	}
	if n := f.count(t, f.dead, 5); n != 5 {
		t.Errorf("dead-letter queue holds %d after a failed replay, want 5", n)
	}
}
