// Package source consumes the worker's RabbitMQ queue with amqp091-go:
// it declares the topology it needs (quorum queue bound to amq.topic, the
// dead-letter exchange and queue), reconnects with capped backoff, and
// gives the pipeline a Session to take deliveries from, acknowledge them
// and dead-letter the bad ones with a reason header.
package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Header names set on dead-lettered messages.
const (
	HeaderReason     = "x-myt-reason"      // short code: invalid-json, handler-error, ...
	HeaderError      = "x-myt-error"       // the detail text
	HeaderRoutingKey = "x-myt-routing-key" // the original routing key
	HeaderDeadAt     = "x-myt-dead-at"     // RFC 3339 time of dead-lettering
)

// Options configure a Source.
type Options struct {
	URLs       []string // secret: never logged
	CAFile     string
	Queue      string
	Exchange   string // amq.topic
	Binding    string // routing pattern, e.g. myt.#
	DeadQueue  string // reached through the default exchange
	Prefetch   int
	Declare    bool
	BackoffMin time.Duration
	BackoffMax time.Duration
	Log        *slog.Logger
}

// Source connects and reconnects.
type Source struct {
	o   Options
	log *slog.Logger
	tls *tls.Config
}

// New returns a Source; nothing is dialled until Run.
func New(o Options) (*Source, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Source{o: o, log: o.Log.With("component", "amqp")}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("amqp.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("amqp.caFile: no PEM certificate found")
		}
		s.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// Session is one connection with a consuming channel and a publishing
// channel in confirm mode. Its methods are called by one goroutine.
type Session struct {
	conn       *amqp.Connection
	consume    *amqp.Channel
	publish    *amqp.Channel
	deliveries <-chan amqp.Delivery
	returns    chan amqp.Return
	o          *Options
	tag        string
}

// Deliveries is closed when the connection or channel closes.
func (s *Session) Deliveries() <-chan amqp.Delivery { return s.deliveries }

// Ack acknowledges every delivery up to and including tag.
func (s *Session) Ack(tag uint64) error {
	if err := s.consume.Ack(tag, true); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// StopConsuming cancels the consumer: the broker sends no more deliveries;
// the ones received can still be acknowledged.
func (s *Session) StopConsuming() error { return s.consume.Cancel(s.tag, false) }

// Dead is one message to dead-letter.
type Dead struct {
	D      *amqp.Delivery
	Reason string
	Detail string
}

// DeadLetter publishes copies of the messages, with the reason headers, to
// the dead-letter exchange and waits for the broker's confirms. Only then
// may the originals be acknowledged.
func (s *Session) DeadLetter(ctx context.Context, dead []Dead) error {
	confirms := make([]*amqp.DeferredConfirmation, 0, len(dead))
	// One nanosecond apart: a replayed message without a time of its own
	// takes its dead-letter time as receive time, and InfluxDB keys a
	// point by series and time.
	now := time.Now().UTC()
	for i, d := range dead {
		h := amqp.Table{}
		for k, v := range d.D.Headers {
			h[k] = v
		}
		detail := d.Detail
		if len(detail) > 1000 {
			detail = detail[:1000]
		}
		h[HeaderReason] = d.Reason
		h[HeaderError] = detail
		h[HeaderRoutingKey] = d.D.RoutingKey
		h[HeaderDeadAt] = now.Add(time.Duration(i)).Format(time.RFC3339Nano)
		// Through the default exchange straight to the dead queue: works
		// with any topology that has the queue (no extra exchange).
		c, err := s.publish.PublishWithDeferredConfirmWithContext(ctx, "", s.o.DeadQueue, true, false, amqp.Publishing{
			Headers: h, ContentType: d.D.ContentType, ContentEncoding: d.D.ContentEncoding,
			DeliveryMode: amqp.Persistent, MessageId: d.D.MessageId, Timestamp: d.D.Timestamp,
			Type: d.D.Type, AppId: d.D.AppId, CorrelationId: d.D.CorrelationId, Body: d.D.Body,
		})
		if err != nil {
			return fmt.Errorf("dead-letter publish: %w", err)
		}
		confirms = append(confirms, c)
	}
	for _, c := range confirms {
		ok, err := c.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("dead-letter confirm: %w", err)
		}
		if !ok {
			return errors.New("dead-letter publish was nacked by the broker")
		}
	}
	// A message the broker could not route is returned before its confirm.
	returned := 0
	for {
		select {
		case <-s.returns:
			returned++
			continue
		default:
		}
		break
	}
	if returned > 0 {
		return fmt.Errorf("dead-letter: %d message(s) unroutable: queue %s missing", returned, s.o.DeadQueue)
	}
	return nil
}

// QueueDepth returns the number of ready messages in the queue.
func (s *Session) QueueDepth() (int, error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(s.o.Queue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

// Close closes the connection (unacknowledged deliveries go back to the
// queue).
func (s *Session) Close() error { return s.conn.Close() }

// Run connects (retrying with capped exponential backoff and jitter) and
// calls fn with each session until ctx ends. fn returns when the session
// broke (Run reconnects) or ctx ended. connected reports broker state
// changes (may be nil).
func (s *Source) Run(ctx context.Context, connected func(bool), fn func(ctx context.Context, sess *Session) error) error {
	backoff := s.o.BackoffMin
	attempt := 0
	for {
		sess, err := s.dial(attempt)
		attempt++
		if err != nil {
			s.log.Warn("broker unavailable; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(jitter(backoff)):
			}
			backoff = min(backoff*2, s.o.BackoffMax)
			continue
		}
		backoff = s.o.BackoffMin
		if connected != nil {
			connected(true)
		}
		s.log.Info("consuming", "queue", s.o.Queue, "prefetch", s.o.Prefetch)
		err = fn(ctx, sess)
		sess.Close()
		if connected != nil {
			connected(false)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("broker session ended; reconnecting", "err", err)
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// connect dials the attempt'th URL (round robin) with the connection
// name given, and returns the connection and the broker's host.
func (s *Source) connect(attempt int, name string) (*amqp.Connection, string, error) {
	raw := s.o.URLs[attempt%len(s.o.URLs)]
	host := "?"
	if u, err := url.Parse(raw); err == nil {
		host = u.Host
	}
	conn, err := amqp.DialConfig(raw, amqp.Config{
		Heartbeat: 10 * time.Second, Locale: "en_US", TLSClientConfig: s.tls,
		Properties: amqp.Table{"connection_name": name},
	})
	if err != nil {
		return nil, host, fmt.Errorf("dial %s: %w", host, stripURL(err))
	}
	return conn, host, nil
}

func (s *Source) dial(attempt int) (*Session, error) {
	conn, host, err := s.connect(attempt, "myt-worker")
	if err != nil {
		return nil, err
	}
	sess := &Session{conn: conn, o: &s.o, tag: fmt.Sprintf("myt-worker-%d-%d", os.Getpid(), attempt)}
	fail := func(what string, err error) (*Session, error) {
		conn.Close()
		return nil, fmt.Errorf("%s on %s: %w", what, host, err)
	}
	if s.o.Declare {
		if err := s.declare(conn); err != nil {
			return fail("declare", err)
		}
	}
	if sess.consume, err = conn.Channel(); err != nil {
		return fail("channel", err)
	}
	if err := sess.consume.Qos(s.o.Prefetch, 0, false); err != nil {
		return fail("qos", err)
	}
	if sess.publish, err = conn.Channel(); err != nil {
		return fail("channel", err)
	}
	if err := sess.publish.Confirm(false); err != nil {
		return fail("confirm mode", err)
	}
	// One DeadLetter call publishes at most a batch (<= prefetch) of
	// messages; every one may come back. amqp091 waits 5 s on a full
	// return channel (and then drops the return), stalling the reader.
	sess.returns = sess.publish.NotifyReturn(make(chan amqp.Return, max(64, s.o.Prefetch)))
	if sess.deliveries, err = sess.consume.Consume(s.o.Queue, sess.tag, false, false, false, false, nil); err != nil {
		return fail("consume "+s.o.Queue, err)
	}
	return sess, nil
}

// declare creates the topology idempotently, on its own channel (a
// mismatch closes only that channel).
func (s *Source) declare(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(s.o.DeadQueue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		if err := s.declareMismatch(conn, s.o.DeadQueue, err); err != nil {
			return err
		}
		if ch, err = conn.Channel(); err != nil {
			return err
		}
		defer ch.Close()
	}
	// The broker's own dead-lettering (for example a quorum queue's
	// delivery limit) goes to the same queue, via the default exchange.
	_, err = ch.QueueDeclare(s.o.Queue, true, false, false, false, amqp.Table{
		"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": s.o.DeadQueue,
	})
	if err != nil {
		if err := s.declareMismatch(conn, s.o.Queue, err); err != nil {
			return err
		}
		if ch, err = conn.Channel(); err != nil {
			return err
		}
		defer ch.Close()
	}
	if err := ch.QueueBind(s.o.Queue, s.o.Binding, s.o.Exchange, false, nil); err != nil {
		return fmt.Errorf("bind %s to %s: %w", s.o.Queue, s.o.Exchange, err)
	}
	return nil
}

// declareMismatch accepts a queue that exists with other arguments (for
// example declared by definitions.json): it is used as it is.
func (s *Source) declareMismatch(conn *amqp.Connection, queue string, err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
		ch, cerr := conn.Channel()
		if cerr != nil {
			return cerr
		}
		defer ch.Close()
		if _, perr := ch.QueueDeclarePassive(queue, true, false, false, false, nil); perr != nil {
			return fmt.Errorf("queue %s: %w", queue, perr)
		}
		s.log.Warn("queue exists with other arguments; using it as is", "queue", queue, "err", ae.Reason)
		return nil
	}
	return fmt.Errorf("queue %s: %w", queue, err)
}

// stripURL keeps URL-bearing errors (which may hold a password) out of logs.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
