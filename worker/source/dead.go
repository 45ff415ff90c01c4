package source

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// HeaderReplayed counts how often a message was replayed from the
// dead-letter queue. On a delivery from the ingest queue through the
// default exchange it also marks the message as a replay, whose original
// routing key is in HeaderRoutingKey.
const HeaderReplayed = "x-myt-replayed"

// HeaderReplayRun names the replay that published a message. A message
// that fails again during that replay comes back to the dead-letter queue
// with it, and the same replay moves it to the back instead of replaying
// it again.
const HeaderReplayRun = "x-myt-replay-run"

// ErrNoIngestQueue is returned by Replay when the ingest queue does not
// exist (the replayed message was unroutable).
var ErrNoIngestQueue = errors.New("the ingest queue does not exist")

// DeadQueue is a connection of its own for reading, replaying and purging
// the dead-letter queue. It is separate from the consuming connection, so
// that a replay's publishing never throttles the consumer's acks. Its
// methods are called by one goroutine at a time.
type DeadQueue struct {
	conn *amqp.Connection
	o    *Options
}

// DialDead connects for DeadQueue work, trying each URL once.
func (s *Source) DialDead() (*DeadQueue, error) {
	var errs []error
	for i := range s.o.URLs {
		conn, _, err := s.connect(i, "myt-worker-dead")
		if err == nil {
			return &DeadQueue{conn: conn, o: &s.o}, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Close closes the connection: deliveries not acknowledged go back to the
// dead-letter queue.
func (q *DeadQueue) Close() error { return q.conn.Close() }

// Count returns the number of ready messages in the dead-letter queue.
func (q *DeadQueue) Count() (int, error) {
	ch, err := q.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	return count(ch, q.o.DeadQueue)
}

func count(ch *amqp.Channel, queue string) (int, error) {
	st, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", queue, err)
	}
	return st.Messages, nil
}

// Peek returns the queue's ready count and up to n of its oldest
// messages, and leaves them in the queue: it takes them with basic.get
// without acknowledging them and hands them back with one basic.nack
// (multiple, requeue), as the management UI's "get messages" does. A
// basic.nack does not count as a failed delivery (RabbitMQ 4.3 and later;
// 4.0 to 4.2 count every requeue against a quorum queue's delivery
// limit).
func (q *DeadQueue) Peek(n int) (total int, msgs []amqp.Delivery, err error) {
	ch, err := q.conn.Channel()
	if err != nil {
		return 0, nil, err
	}
	defer ch.Close()
	if total, err = count(ch, q.o.DeadQueue); err != nil {
		return 0, nil, err
	}
	for len(msgs) < n {
		d, ok, err := ch.Get(q.o.DeadQueue, false)
		if err != nil {
			return 0, nil, fmt.Errorf("get: %w", err)
		}
		if !ok {
			break
		}
		msgs = append(msgs, d)
	}
	if len(msgs) > 0 {
		// Closing the channel would requeue them too; the nack says so.
		if err := ch.Nack(msgs[len(msgs)-1].DeliveryTag, true, true); err != nil {
			return 0, nil, fmt.Errorf("requeue: %w", err)
		}
		// A quorum queue takes them back a moment later. Until then the
		// next Peek would count fewer, and a replay take fewer: wait (a
		// little) until they are back.
		for deadline := time.Now().Add(PeekSettle); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n, err := count(ch, q.o.DeadQueue); err != nil || n >= total {
				break
			}
		}
	}
	return max(total, len(msgs)), msgs, nil
}

// PeekSettle bounds how long Peek waits for the messages it handed back
// to be counted in the queue again.
var PeekSettle = 2 * time.Second

// Purge deletes every ready message of the dead-letter queue and returns
// how many it deleted.
func (q *DeadQueue) Purge() (int, error) {
	ch, err := q.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	n, err := ch.QueuePurge(q.o.DeadQueue, false)
	if err != nil {
		return 0, fmt.Errorf("purge %s: %w", q.o.DeadQueue, err)
	}
	return n, nil
}

// Replay moves up to n messages from the dead-letter queue to the ingest
// queue: it takes them with basic.get, publishes each (the replay
// Publishing) to the ingest queue through the default exchange, waits for
// the broker's confirms, and only then acknowledges them in the dead-letter
// queue (one basic.ack, multiple, per chunk). So nothing is lost when the
// process dies: what was not acknowledged goes back to the dead-letter
// queue, and a message confirmed but not acknowledged is replayed again
// later (the record id makes that second copy no second row). A message
// that this replay published and that failed again (it carries this
// replay's HeaderReplayRun) is moved to the back of the dead-letter queue
// the same way (published, confirmed, then acknowledged), not replayed
// again. It works in chunks of at most chunk messages; lock is held for
// each chunk (so a Peek does not see a chunk in flight). afterConfirm,
// when set, runs between a chunk's confirms and its ack; an error from it
// ends the replay without the ack (tests use it to stand for a crash).
// Replay stops between chunks when ctx ends, and returns how many messages
// it moved to the ingest queue.
func (q *DeadQueue) Replay(ctx context.Context, n, chunk int, lock func() func(), afterConfirm func() error) (int, error) {
	get, err := q.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer get.Close()
	pub, err := q.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	if err := pub.Confirm(false); err != nil {
		return 0, fmt.Errorf("confirm mode: %w", err)
	}
	r := &replay{q: q, get: get, pub: pub, run: fmt.Sprintf("%016x", rand.Uint64()),
		returns: pub.NotifyReturn(make(chan amqp.Return, chunk))}
	defer func() {
		// A quorum queue settles acks as low-priority commands: a channel
		// closed right after its last ack could have its messages returned
		// first, and they stayed in the dead-letter queue after being
		// replayed (RabbitMQ 3.10, TestDeadLetters). Not harmful (replayed
		// again later, stored once), but a moment's wait avoids it.
		if r.acked {
			time.Sleep(AckSettle)
		}
	}()
	moved := 0
	for moved < n && ctx.Err() == nil {
		k, progress, err := r.chunk(ctx, min(chunk, n-moved), lock, afterConfirm)
		moved += k
		if err != nil {
			return moved, err
		}
		if !progress {
			break
		}
	}
	return moved, nil
}

// replay is one Replay's state.
type replay struct {
	q        *DeadQueue
	get, pub *amqp.Channel
	run      string
	returns  chan amqp.Return
	acked    bool
}

// AckSettle is how long Replay keeps its channel open after its last ack.
var AckSettle = time.Second

// chunk replays up to n messages. progress is false when the queue held
// nothing (or only messages of this replay) to replay.
func (r *replay) chunk(ctx context.Context, n int, lock func() func(), afterConfirm func() error) (replayed int, progress bool, err error) {
	unlock := lock()
	defer unlock()
	// Confirms are waited for even when ctx ends meanwhile: a chunk in
	// flight is finished (or, on error, handed back), not abandoned.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var last uint64
	confirms := make([]*amqp.DeferredConfirmation, 0, n)
	fail := func(err error) (int, bool, error) {
		if last != 0 {
			r.get.Nack(last, true, true) // back to the dead-letter queue
		}
		return 0, false, err
	}
	for taken := 0; replayed < n && taken < 2*n; taken++ {
		d, ok, err := r.get.Get(r.q.o.DeadQueue, false)
		if err != nil {
			return fail(fmt.Errorf("get: %w", err))
		}
		if !ok {
			break
		}
		last = d.DeliveryTag
		var c *amqp.DeferredConfirmation
		if run, _ := d.Headers[HeaderReplayRun].(string); run == r.run {
			// Failed again in this replay: to the back, as it is.
			c, err = r.pub.PublishWithDeferredConfirmWithContext(wctx, "", r.q.o.DeadQueue, true, false, deadPublishing(&d))
		} else {
			p := ReplayPublishing(&d)
			p.Headers[HeaderReplayRun] = r.run
			c, err = r.pub.PublishWithDeferredConfirmWithContext(wctx, "", r.q.o.Queue, true, false, p)
			replayed++
		}
		if err != nil {
			return fail(fmt.Errorf("publish: %w", err))
		}
		confirms = append(confirms, c)
	}
	for _, c := range confirms {
		ok, err := c.WaitContext(wctx)
		if err != nil {
			return fail(fmt.Errorf("confirm: %w", err))
		}
		if !ok {
			return fail(errors.New("the broker refused a replayed message (nack)"))
		}
	}
	// An unroutable message comes back before its confirm.
	select {
	case <-r.returns:
		for len(r.returns) > 0 {
			<-r.returns
		}
		return fail(fmt.Errorf("%w: %s", ErrNoIngestQueue, r.q.o.Queue))
	default:
	}
	if last == 0 {
		return 0, false, nil
	}
	if afterConfirm != nil {
		if err := afterConfirm(); err != nil {
			return 0, false, err // not acknowledged: they come back when the connection closes
		}
	}
	if err := r.get.Ack(last, true); err != nil {
		return 0, false, fmt.Errorf("ack: %w", err)
	}
	r.acked = true
	return replayed, replayed > 0, nil
}

// deadPublishing is dead letter d, unchanged, to publish it again.
func deadPublishing(d *amqp.Delivery) amqp.Publishing {
	return amqp.Publishing{
		Headers: d.Headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: amqp.Persistent, Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo,
		MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId, Body: d.Body,
	}
}

// deathHeaders are the broker's dead-lettering annotations; a replayed
// message starts without them.
var deathHeaders = []string{"x-death", "x-first-death-reason", "x-first-death-queue", "x-first-death-exchange",
	"x-last-death-reason", "x-last-death-queue", "x-last-death-exchange"}

// ReplayPublishing is what Replay publishes for dead letter d: its body
// and properties (message id, timestamp, content type, ...) and its
// headers, without the reason and the broker's death annotations, with
// HeaderRoutingKey set to its original routing key and HeaderReplayed
// counting the replays. HeaderDeadAt stays: the worker takes it as the
// receive time of a message that carries no time of its own, so a
// replayed message gets the same time every time it is replayed.
func ReplayPublishing(d *amqp.Delivery) amqp.Publishing {
	h := amqp.Table{}
	for k, v := range d.Headers {
		h[k] = v
	}
	delete(h, HeaderReason)
	delete(h, HeaderError)
	for _, k := range deathHeaders {
		delete(h, k)
	}
	h[HeaderRoutingKey] = OriginalRoutingKey(d)
	h[HeaderReplayed] = int64(Replays(d) + 1)
	return amqp.Publishing{
		Headers: h, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: amqp.Persistent, Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo,
		MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId, Body: d.Body,
	}
}

// OriginalRoutingKey is the routing key a dead letter was first published
// with: HeaderRoutingKey when the worker dead-lettered it, else the first
// routing key of the broker's x-death entry, else its routing key.
func OriginalRoutingKey(d *amqp.Delivery) string {
	if rk, ok := d.Headers[HeaderRoutingKey].(string); ok && rk != "" {
		return rk
	}
	if death := firstDeath(d); death != nil {
		if keys, ok := death["routing-keys"].([]any); ok && len(keys) > 0 {
			if rk, ok := keys[0].(string); ok {
				return rk
			}
		}
	}
	return d.RoutingKey
}

// DeadReason returns why a message was dead-lettered: HeaderReason and
// HeaderError when the worker did it; otherwise the broker's reason
// (x-first-death-reason: delivery_limit, expired, maxlen, rejected) and
// the queue it came from.
func DeadReason(d *amqp.Delivery) (reason, detail string) {
	if r, ok := d.Headers[HeaderReason].(string); ok && r != "" {
		detail, _ := d.Headers[HeaderError].(string)
		return r, detail
	}
	death := firstDeath(d)
	reason, _ = d.Headers["x-first-death-reason"].(string)
	if reason == "" && death != nil {
		reason, _ = death["reason"].(string)
	}
	queue, _ := d.Headers["x-first-death-queue"].(string)
	if queue == "" && death != nil {
		queue, _ = death["queue"].(string)
	}
	if reason == "" {
		return "unknown", ""
	}
	return reason, "dead-lettered by the broker from queue " + queue
}

// DeadAt returns when a message was dead-lettered, when known:
// HeaderDeadAt, else the time of the broker's x-death entry.
func DeadAt(d *amqp.Delivery) (time.Time, bool) {
	if s, ok := d.Headers[HeaderDeadAt].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
	}
	if death := firstDeath(d); death != nil {
		if t, ok := death["time"].(time.Time); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// Replays returns how often the message was replayed (HeaderReplayed).
func Replays(d *amqp.Delivery) int {
	switch v := d.Headers[HeaderReplayed].(type) {
	case int64:
		return int(v)
	case int32:
		return int(v)
	case int:
		return v
	case int16:
		return int(v)
	case int8:
		return int(v)
	}
	return 0
}

// firstDeath is the last entry of x-death: the broker adds entries at the
// front, so the last one is the first dead-lettering.
func firstDeath(d *amqp.Delivery) amqp.Table {
	deaths, ok := d.Headers["x-death"].([]any)
	if !ok || len(deaths) == 0 {
		return nil
	}
	t, _ := deaths[len(deaths)-1].(amqp.Table)
	return t
}
