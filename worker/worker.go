package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/worker/handler"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
	"github.com/myt-iot/myt/worker/sink/influxdb"
	"github.com/myt-iot/myt/worker/sink/mongodb"
	"github.com/myt-iot/myt/worker/sink/mysql"
	"github.com/myt-iot/myt/worker/sink/postgres"
	"github.com/myt-iot/myt/worker/source"
)

// Dead-letter reasons (the x-myt-reason header and the metric label).
const (
	ReasonInvalidJSON    = "invalid-json"    // body is not JSON
	ReasonHandlerError   = "handler-error"   // process() raised
	ReasonHandlerTimeout = "handler-timeout" // process() hung past handler.timeout
	ReasonHandlerCrash   = "handler-crash"   // the Python process died on this message
	ReasonHandlerResult  = "handler-result"  // process() returned something unstorable
	ReasonInvalidField   = "invalid-field"   // a value does not fit its declared type
	ReasonDBRejected     = "db-rejected"     // the database refused the row
)

// HandlerReason is the dead-letter reason for a failed handler.Result of
// kind k.
func HandlerReason(k handler.Kind) string {
	switch k {
	case handler.TimedOut:
		return ReasonHandlerTimeout
	case handler.Crashed:
		return ReasonHandlerCrash
	case handler.BadResult:
		return ReasonHandlerResult
	}
	return ReasonHandlerError
}

// NewSink builds the sink for database.kind.
func NewSink(kind string, o sink.Options) (sink.Sink, error) {
	switch kind {
	case KindMySQL:
		return mysql.New(o), nil
	case KindPostgres:
		return postgres.New(o), nil
	case KindTimescaleDB:
		o.Timescale = true
		return postgres.New(o), nil
	case KindMongoDB:
		return mongodb.New(o), nil
	case KindInfluxDB:
		return influxdb.New(o), nil
	}
	return nil, fmt.Errorf("database.kind: unknown kind %q", kind)
}

// Worker is the running data path.
type Worker struct {
	cfg     *Config
	log     *slog.Logger
	Metrics *Metrics
	sink    sink.Sink
	sinkMu  sync.Mutex // Write is used by one goroutine at a time
	runner  atomic.Pointer[handler.Runner]
	swapMu  sync.Mutex // serializes swaps and, for PUT /v1/handler, the file write
	// candidate removes the running handler's file when it is a private
	// copy (PUT /v1/handler could not replace handler.path); under swapMu.
	candidate func()
	broker    atomic.Bool
	db        atomic.Bool
	running   atomic.Bool
	// stop is Run's context: when it ends, waits for the database or the
	// handler give up, while work in hand finishes under a grace period.
	stop         context.Context
	lastRestarts int
	// recvMu guards lastReceived, the latest receive time handed out.
	recvMu       sync.Mutex
	lastReceived time.Time
	// deadMu serializes reads of the dead-letter queue with each chunk of a
	// replay; replaying admits one replay at a time (dead.go).
	deadMu    sync.Mutex
	replaying atomic.Bool
	// replayHook runs between a replay chunk's confirms and its ack
	// (tests: a crash there).
	replayHook func() error
}

// receiveTimes returns the first of n receive times, one nanosecond apart,
// each later than any handed out before. A message that carries no time
// of its own is stamped with its receive time, and InfluxDB keys a point by
// series and time: two messages of one device stamped alike would be one
// point, and all but one lost.
func (w *Worker) receiveTimes(n int) time.Time {
	w.recvMu.Lock()
	defer w.recvMu.Unlock()
	t := time.Now()
	if !t.After(w.lastReceived) {
		t = w.lastReceived.Add(time.Nanosecond)
	}
	w.lastReceived = t.Add(time.Duration(max(n-1, 0)))
	return t
}

// DrainGrace bounds how long in-flight work may take after a stop signal.
const DrainGrace = 20 * time.Second

// New builds a worker from a validated config and a sink (from NewSink).
func New(cfg *Config, s sink.Sink, log *slog.Logger) *Worker {
	return &Worker{cfg: cfg, log: log, sink: s, Metrics: NewMetrics()}
}

// errStopped ends a batch without acknowledging it (shutdown).
var errStopped = errors.New("worker stopping")

// Run connects the sink and the handler, then consumes until ctx ends.
// When ctx ends it stops taking messages, finishes the batch in hand
// (acknowledging what was committed) and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	w.running.Store(true)
	defer w.running.Store(false)
	w.stop = ctx
	// The database may come up after the worker: retry.
	if err := w.retry(ctx, "database connect", func() error { return w.sink.Connect(ctx) }); err != nil {
		return nil
	}
	defer w.sink.Close()
	w.setDB(true)
	if days := w.cfg.Database.RetentionDays; days > 0 {
		if ex, ok := w.sink.(sink.Expirer); ok {
			// Its own context: Run may also return early (a bad handler),
			// and the loop must end before the sink is closed.
			ectx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			defer func() { cancel(); <-done }()
			go func() { defer close(done); w.expireLoop(ectx, ex, days) }()
		} else {
			w.log.Info("retention is the database's own (bucket retention)", "retentionDays", days)
		}
	}
	if w.cfg.Handler.Path != "" {
		r, err := handler.New(ctx, handler.Options{Path: w.cfg.Handler.Path, Python: w.cfg.Handler.Python,
			Timeout: w.cfg.Handler.Timeout.D(), Log: w.log})
		if err != nil {
			return fmt.Errorf("handler.path: %w", err)
		}
		w.runner.Store(r)
		defer func() { w.runner.Load().Close() }()
		w.log.Info("handler loaded", "path", w.cfg.Handler.Path)
	} else {
		w.log.Info("no handler configured: passthrough")
	}
	src, err := w.source()
	if err != nil {
		return err
	}
	err = src.Run(ctx, func(up bool) {
		w.broker.Store(up)
		w.Metrics.BrokerUp.Set(b2f(up))
	}, w.session)
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		w.log.Info("worker stopped")
		return nil
	}
	return err
}

// source builds the broker source from the configuration.
func (w *Worker) source() (*source.Source, error) {
	urls, err := w.cfg.BrokerURLs()
	if err != nil {
		return nil, err
	}
	return source.New(source.Options{
		URLs: urls, CAFile: w.cfg.AMQP.CAFile, Queue: w.cfg.AMQP.Queue, Exchange: w.cfg.AMQP.Exchange,
		Binding: w.cfg.RoutingPattern(), DeadQueue: w.cfg.AMQP.DeadQueue, Prefetch: w.cfg.AMQP.Prefetch,
		Declare: w.cfg.DeclareTopology(), BackoffMin: w.cfg.Retry.Min.D(), BackoffMax: w.cfg.Retry.Max.D(), Log: w.log,
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (w *Worker) setDB(up bool) {
	w.db.Store(up)
	w.Metrics.DBUp.Set(b2f(up))
}

// Ready reports whether broker and database are reachable.
func (w *Worker) Ready(ctx context.Context) error {
	if !w.broker.Load() {
		return errors.New("broker not connected")
	}
	if p, ok := w.sink.(sink.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	} else if !w.db.Load() {
		return errors.New("database not reachable")
	}
	return nil
}

// expireLoop deletes records older than days, at once and then every
// database.retentionEvery, until ctx ends. A failure is logged and tried
// again at the next tick: retention never blocks the data path.
func (w *Worker) expireLoop(ctx context.Context, ex sink.Expirer, days int) {
	every := w.cfg.Database.RetentionEvery.D()
	if every == 0 {
		every = DefaultRetentionEvery
	}
	w.log.Info("retention", "retentionDays", days, "every", every)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		cutoff := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
		n, err := ex.Expire(ctx, cutoff)
		w.Metrics.Expired.Add(float64(n))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.log.Warn("retention: delete failed; trying again later", "err", err, "deleted", n, "in", every)
		case n > 0:
			w.log.Info("retention: deleted old records", "count", n, "olderThan", cutoff.UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// retry calls fn until it succeeds, with capped exponential backoff. It
// returns ctx's error when ctx ends first.
func (w *Worker) retry(ctx context.Context, what string, fn func() error) error {
	backoff := w.cfg.Retry.Min.D()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		w.log.Warn(what+" failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))):
		}
		backoff = min(backoff*2, w.cfg.Retry.Max.D())
	}
}

// session consumes one broker session until it breaks or stop ends. It is
// a two-stage pipeline: this goroutine collects a batch, decodes it and
// runs the handler (prepare) while a second goroutine writes the previous
// batch and acknowledges it (commit). Commits happen in batch order, so an
// ack (multiple) never covers a delivery that is not committed.
func (w *Worker) session(stop context.Context, sess *source.Session) error {
	// ctx is for I/O of work in hand: it outlives stop by DrainGrace.
	ctx, cancel := context.WithCancel(context.WithoutCancel(stop))
	defer cancel()
	defer context.AfterFunc(stop, func() { time.AfterFunc(DrainGrace, cancel) })()
	depthCtx, stopDepth := context.WithCancel(context.Background())
	defer stopDepth()
	go w.sampleDepth(depthCtx, sess)

	work := make(chan *prepared, 1)
	errc := make(chan error, 1)
	go func() {
		for p := range work {
			if err := w.commit(ctx, sess, p); err != nil {
				errc <- err
				for range work { // the rest is redelivered
				}
				return
			}
		}
		errc <- nil
	}()
	// finish stops the commit stage after what it holds and returns its error.
	finish := func() error {
		close(work)
		return <-errc
	}
	send := func(batch []amqp.Delivery) error {
		p, err := w.prepare(ctx, batch)
		if err != nil {
			return err
		}
		select {
		case work <- p:
			return nil
		case err := <-errc:
			errc <- err
			return err
		}
	}

	size, maxWait := w.cfg.Batch.Size, w.cfg.Batch.MaxWait.D()
	batch := make([]amqp.Delivery, 0, size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	deliveries := sess.Deliveries()
	for {
		flush := false
		select {
		case d, ok := <-deliveries:
			if !ok {
				if err := finish(); err != nil {
					return err
				}
				return errors.New("delivery channel closed")
			}
			if len(batch) == 0 {
				timer.Reset(maxWait)
			}
			batch = append(batch, d)
			flush = len(batch) >= size
		case <-timer.C:
			flush = len(batch) > 0
		case err := <-errc:
			close(work)
			return err
		case <-stop.Done():
			// Drain: no new deliveries; finish the batches in hand.
			// Deliveries prefetched but not in a batch go back to the queue
			// when the connection closes.
			sess.StopConsuming()
			n := len(batch)
			var err error
			if n > 0 {
				w.log.Info("draining", "messages", n)
				err = send(batch)
			}
			if ferr := finish(); err == nil {
				err = ferr
			}
			if err != nil {
				w.log.Warn("drain incomplete; the rest stays in the queue", "err", err)
			} else if n > 0 {
				w.log.Info("drained", "messages", n)
			}
			return context.Canceled
		}
		if flush {
			timer.Stop()
			if err := send(batch); err != nil {
				finish()
				return err
			}
			batch = make([]amqp.Delivery, 0, size)
		}
	}
}

func (w *Worker) sampleDepth(ctx context.Context, sess *source.Session) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if n, err := sess.QueueDepth(); err == nil {
			w.Metrics.QueueDepth.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// item ties records to the delivery they came from.
type item struct {
	d    *amqp.Delivery
	recs []record.Record
	dead *source.Dead
}

// prepared is a decoded batch whose handler has run.
type prepared struct {
	batch []amqp.Delivery
	items []item
	recs  []record.Record
	owner map[string]int
}

// prepare decodes a batch and runs the handler on it.
func (w *Worker) prepare(ctx context.Context, batch []amqp.Delivery) (*prepared, error) {
	w.Metrics.Batches.Observe(float64(len(batch)))
	received := w.receiveTimes(len(batch))
	items := make([]item, len(batch))
	ins := make([]record.Input, 0, len(batch))
	idx := make([]int, 0, len(batch))
	for i := range batch {
		d := &batch[i]
		items[i].d = d
		m := record.Message{RoutingKey: d.RoutingKey, MessageID: d.MessageId, Timestamp: d.Timestamp,
			Body: d.Body, Received: received.Add(time.Duration(i)), Redelivered: d.Redelivered}
		if w.replayed(d) {
			// The original routing key names device and topic and, with the
			// body, makes the id; a dead letter stored in part (fan-out) or
			// replayed twice may be stored already.
			d.RoutingKey = d.Headers[source.HeaderRoutingKey].(string)
			m.RoutingKey, m.Redelivered = d.RoutingKey, true
			if t, ok := source.DeadAt(d); ok {
				m.Received = t
			}
		}
		if v, ok := d.Headers["timestamp_in_ms"]; ok {
			if ms, ok := v.(int64); ok {
				m.HeaderTS = time.UnixMilli(ms)
			}
		}
		in, err := record.Decode(m, w.cfg.TopicPrefix)
		if err != nil {
			items[i].dead = &source.Dead{D: d, Reason: ReasonInvalidJSON, Detail: err.Error()}
			continue
		}
		ins = append(ins, in)
		idx = append(idx, i)
	}
	if r := w.runner.Load(); r != nil && len(ins) > 0 {
		var results []handler.Result
		start := time.Now()
		err := w.retry(w.stopCtx(ctx), "handler", func() error {
			var err error
			results, err = w.runner.Load().Process(ctx, ins)
			return err
		})
		if err != nil {
			return nil, errStopped
		}
		w.Metrics.HandlerSecond.Observe(time.Since(start).Seconds())
		if n := r.Restarts(); n > w.lastRestarts {
			w.Metrics.Restarts.Add(float64(n - w.lastRestarts))
			w.lastRestarts = n
		}
		for j, res := range results {
			it := &items[idx[j]]
			if res.Kind != handler.OK || res.Err != "" {
				it.dead = &source.Dead{D: it.d, Reason: HandlerReason(res.Kind), Detail: res.Err}
				continue
			}
			recs, err := record.FromHandler(ins[j], res.Value)
			if err != nil {
				it.dead = &source.Dead{D: it.d, Reason: ReasonHandlerResult, Detail: err.Error()}
				continue
			}
			if len(recs) == 0 {
				w.Metrics.Dropped.Inc()
			}
			it.recs = recs
		}
	} else {
		for j, in := range ins {
			items[idx[j]].recs = []record.Record{record.Passthrough(in)}
		}
	}
	// Collect records, first occurrence of an id wins (a QoS 1 resend in the
	// same batch is the same message).
	owner := map[string]int{}
	recs := make([]record.Record, 0, len(batch))
	for i := range items {
		for _, r := range items[i].recs {
			if _, dup := owner[r.ID]; dup {
				continue
			}
			owner[r.ID] = i
			recs = append(recs, r)
		}
	}
	return &prepared{batch: batch, items: items, recs: recs, owner: owner}, nil
}

// commit writes a prepared batch (isolating bad rows), dead-letters, then
// acknowledges the whole batch once. Nothing is acknowledged unless the
// database committed every stored record of the batch.
func (w *Worker) commit(ctx context.Context, sess *source.Session, p *prepared) error {
	batch, items := p.batch, p.items
	stored, err := w.write(ctx, p.recs, items, p.owner)
	if err != nil {
		return err
	}
	var dead []source.Dead
	for i := range items {
		if items[i].dead != nil {
			dead = append(dead, *items[i].dead)
		}
	}
	if len(dead) > 0 {
		if err := sess.DeadLetter(ctx, dead); err != nil {
			return err // not acked: the batch comes again; writes are idempotent
		}
		for _, d := range dead {
			w.Metrics.Dead.WithLabelValues(d.Reason).Inc()
			w.log.Warn("dead-lettered", "reason", d.Reason, "error", d.Detail, "routingKey", d.D.RoutingKey)
		}
	}
	if err := sess.Ack(batch[len(batch)-1].DeliveryTag); err != nil {
		return err
	}
	w.Metrics.Consumed.Add(float64(len(batch)))
	w.Metrics.Stored.Add(float64(stored))
	return nil
}

// write stores recs, retrying transient errors with backoff, dead-lettering
// (via items) records the database or the declared types reject, splitting
// the batch to find them. It returns how many records were stored.
func (w *Worker) write(ctx context.Context, recs []record.Record, items []item, owner map[string]int) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	backoff := w.cfg.Retry.Min.D()
	for {
		start := time.Now()
		w.sinkMu.Lock()
		err := w.sink.Write(context.WithoutCancel(ctx), recs)
		w.sinkMu.Unlock()
		if err == nil {
			w.Metrics.WriteSeconds.Observe(time.Since(start).Seconds())
			if !w.db.Load() {
				w.log.Info("database back; writing resumed")
			}
			w.setDB(true)
			return len(recs), nil
		}
		var inv *record.InvalidError
		switch {
		case errors.As(err, &inv):
			i, ok := owner[inv.ID]
			if !ok {
				return 0, fmt.Errorf("sink named unknown record %q: %w", inv.ID, err)
			}
			items[i].dead = &source.Dead{D: items[i].d, Reason: ReasonInvalidField, Detail: inv.Err.Error()}
			recs = without(recs, owner, i)
			if len(recs) == 0 {
				return 0, nil
			}
			continue
		case errors.Is(err, sink.ErrRejected):
			w.setDB(true)
			// An unordered insert (MongoDB) keeps the rows it could write:
			// the halves below are retries of records that may be stored.
			markSeen(recs)
			if len(recs) == 1 {
				i := owner[recs[0].ID]
				items[i].dead = &source.Dead{D: items[i].d, Reason: ReasonDBRejected, Detail: err.Error()}
				return 0, nil
			}
			h := len(recs) / 2
			a, err := w.write(ctx, recs[:h:h], items, owner)
			if err != nil {
				return 0, err
			}
			b, err := w.write(ctx, recs[h:], items, owner)
			return a + b, err
		}
		// Transient: the database is down or unreachable. Nothing is acked,
		// so the broker stops delivering once prefetch is used up. The write
		// may have been applied in part (a reset mid insert, a write-concern
		// error): the retry carries the records as possibly seen.
		markSeen(recs)
		w.setDB(false)
		w.Metrics.WriteRetries.Inc()
		w.log.Warn("database write failed; pausing and retrying", "err", err, "in", backoff, "records", len(recs))
		select {
		case <-w.stopCtx(ctx).Done():
			return 0, errStopped
		case <-ctx.Done():
			return 0, errStopped
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, w.cfg.Retry.Max.D())
	}
}

// stopCtx is the stop signal (Run's context) or, outside Run, ctx.
func (w *Worker) stopCtx(ctx context.Context) context.Context {
	if w.stop != nil {
		return w.stop
	}
	return ctx
}

// markSeen flags recs Redelivered ("may have been stored"), so that a sink
// whose unique key cannot be the id alone (a MongoDB time-series
// collection, a TimescaleDB hypertable) skips those already present when
// they are written again.
func markSeen(recs []record.Record) {
	for i := range recs {
		recs[i].Redelivered = true
	}
}

// without drops every record owned by item i (a message is stored whole
// or dead-lettered whole; fan-out rows already written stay).
func without(recs []record.Record, owner map[string]int, i int) []record.Record {
	out := recs[:0:0]
	for _, r := range recs {
		if owner[r.ID] != i {
			out = append(out, r)
		}
	}
	return out
}

// SwapHandler loads path as the new handler, between two batches.
func (w *Worker) SwapHandler(ctx context.Context, path string) error {
	w.swapMu.Lock()
	defer w.swapMu.Unlock()
	return w.swapHandler(ctx, path)
}

// swapHandler is SwapHandler with swapMu held.
func (w *Worker) swapHandler(ctx context.Context, path string) error {
	r := w.runner.Load()
	if r == nil {
		return errors.New("no handler configured (passthrough): set handler.path and restart")
	}
	if err := r.Swap(ctx, path); err != nil {
		return err
	}
	if w.candidate != nil { // the code it ran is gone for good
		w.candidate()
		w.candidate = nil
	}
	return nil
}

// Handler returns the handler runner, or nil in passthrough mode.
func (w *Worker) Handler() *handler.Runner { return w.runner.Load() }
