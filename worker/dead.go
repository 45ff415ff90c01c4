package worker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/source"
)

// Limits of the dead-letter API.
const (
	DeadListDefault = 50      // GET /v1/dead without limit
	DeadListMax     = 500     // largest limit of GET /v1/dead
	DeadBodyMax     = 4 << 10 // body bytes shown per dead letter
	ReplayChunk     = 200     // messages per confirm round of a replay
	ReplayMax       = 1 << 20 // largest limit of POST /v1/dead/replay
)

// DeadLetter is one message of the dead-letter queue, as GET /v1/dead
// lists it.
type DeadLetter struct {
	// ID is the record id the message gets when it is stored (fan-out
	// rows: ID#1, ...).
	ID         string     `json:"id"`
	Reason     string     `json:"reason"`
	Detail     string     `json:"detail,omitempty"`
	RoutingKey string     `json:"routingKey"`
	Device     string     `json:"device"`
	DeadAt     *time.Time `json:"deadAt,omitempty"`
	// Body is the message body, at most DeadBodyMax bytes of it
	// (Truncated), base64 when it is not UTF-8 (Encoding "base64").
	Body      string `json:"body"`
	Size      int    `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
	// Replays counts earlier replays of this message.
	Replays int `json:"replays,omitempty"`
}

// DeadList is the answer of GET /v1/dead.
type DeadList struct {
	Total int          `json:"total"`
	Items []DeadLetter `json:"items"`
}

// ReplayResult is the answer of POST /v1/dead/replay.
type ReplayResult struct {
	Replayed  int `json:"replayed"`
	Remaining int `json:"remaining"`
}

// PurgeResult is the answer of DELETE /v1/dead.
type PurgeResult struct {
	Purged int `json:"purged"`
}

// replayed reports whether d is a dead letter replayed into the ingest
// queue: published through the default exchange straight to it (which
// devices cannot do) with HeaderReplayed and its original routing key.
func (w *Worker) replayed(d *amqp.Delivery) bool {
	if d.Exchange != "" || d.RoutingKey != w.cfg.AMQP.Queue {
		return false
	}
	rk, ok := d.Headers[source.HeaderRoutingKey].(string)
	return ok && rk != "" && source.Replays(d) > 0
}

// deadLetter describes dead letter d.
func (w *Worker) deadLetter(d *amqp.Delivery) DeadLetter {
	rk := source.OriginalRoutingKey(d)
	_, device, _ := record.SplitRoutingKey(rk, w.cfg.TopicPrefix)
	reason, detail := source.DeadReason(d)
	out := DeadLetter{
		ID:     record.MessageID(record.Message{RoutingKey: rk, MessageID: d.MessageId, Body: d.Body}),
		Reason: reason, Detail: detail, RoutingKey: rk, Device: device, Size: len(d.Body), Replays: source.Replays(d),
	}
	if t, ok := source.DeadAt(d); ok {
		t = t.UTC()
		out.DeadAt = &t
	}
	body := d.Body
	if len(body) > DeadBodyMax {
		body, out.Truncated = body[:DeadBodyMax], true
	}
	if utf8.Valid(d.Body) {
		for !utf8.Valid(body) { // cut inside a character
			body = body[:len(body)-1]
		}
		out.Body = string(body)
	} else {
		out.Body, out.Encoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	return out
}

// limitParam reads the query parameter limit: def when absent, else an
// integer in 1..max.
func limitParam(r *http.Request, def, max int) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1 && n <= max
}

// openDead connects to the broker for dead-letter work, or answers 503.
func (w *Worker) openDead(rw http.ResponseWriter) *source.DeadQueue {
	src, err := w.source()
	if err == nil {
		var q *source.DeadQueue
		if q, err = src.DialDead(); err == nil {
			return q
		}
	}
	w.log.Warn("dead letters: broker unavailable", "err", err)
	http.Error(rw, "broker unavailable", http.StatusServiceUnavailable)
	return nil
}

func (w *Worker) deadFailed(rw http.ResponseWriter, what string, err error) {
	w.log.Warn("dead letters: "+what+" failed", "err", err, "queue", w.cfg.AMQP.DeadQueue)
	http.Error(rw, what+" failed: "+err.Error(), http.StatusServiceUnavailable)
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(v)
}

// serveDeadList lists the oldest dead letters and leaves them in the
// queue.
func (w *Worker) serveDeadList(rw http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(r, DeadListDefault, DeadListMax)
	if !ok {
		http.Error(rw, "limit: must be an integer from 1 to "+strconv.Itoa(DeadListMax), http.StatusBadRequest)
		return
	}
	q := w.openDead(rw)
	if q == nil {
		return
	}
	defer q.Close()
	w.deadMu.Lock()
	total, msgs, err := q.Peek(limit)
	w.deadMu.Unlock()
	if err != nil {
		w.deadFailed(rw, "read", err)
		return
	}
	out := DeadList{Total: total, Items: make([]DeadLetter, 0, len(msgs))}
	for i := range msgs {
		out.Items = append(out.Items, w.deadLetter(&msgs[i]))
	}
	writeJSON(rw, out)
}

// serveDeadReplay moves dead letters back to the ingest queue, where the
// current handler processes them again. Without limit it replays what is
// in the queue when it starts (not what fails again meanwhile).
func (w *Worker) serveDeadReplay(rw http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(r, 0, ReplayMax)
	if !ok {
		http.Error(rw, "limit: must be an integer from 1 to "+strconv.Itoa(ReplayMax), http.StatusBadRequest)
		return
	}
	if !w.replaying.CompareAndSwap(false, true) {
		http.Error(rw, "a replay is running", http.StatusConflict)
		return
	}
	defer w.replaying.Store(false)
	q := w.openDead(rw)
	if q == nil {
		return
	}
	defer q.Close()
	n, err := q.Count()
	if err != nil {
		w.deadFailed(rw, "replay", err)
		return
	}
	if limit > 0 {
		n = min(n, limit)
	}
	lock := func() func() { w.deadMu.Lock(); return w.deadMu.Unlock }
	start := time.Now()
	moved, err := q.Replay(r.Context(), n, ReplayChunk, lock, w.replayHook)
	w.Metrics.Replayed.Add(float64(moved))
	if err != nil {
		w.log.Warn("dead letters: replay stopped", "err", err, "replayed", moved)
		status := http.StatusServiceUnavailable
		if errors.Is(err, source.ErrNoIngestQueue) {
			status = http.StatusConflict
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(status)
		json.NewEncoder(rw).Encode(struct {
			ReplayResult
			Error string `json:"error"`
		}{ReplayResult{Replayed: moved, Remaining: -1}, "replay stopped: " + err.Error() + "; replaying again is safe"})
		return
	}
	remaining, err := q.Count()
	if err != nil {
		remaining = -1
	}
	w.log.Info("dead letters replayed", "replayed", moved, "remaining", remaining, "took", time.Since(start).Round(time.Millisecond))
	writeJSON(rw, ReplayResult{Replayed: moved, Remaining: remaining})
}

// serveDeadPurge deletes every dead letter that is not being replayed.
func (w *Worker) serveDeadPurge(rw http.ResponseWriter, r *http.Request) {
	q := w.openDead(rw)
	if q == nil {
		return
	}
	defer q.Close()
	w.deadMu.Lock()
	n, err := q.Purge()
	w.deadMu.Unlock()
	if err != nil {
		w.deadFailed(rw, "purge", err)
		return
	}
	w.Metrics.Purged.Add(float64(n))
	w.log.Info("dead letters purged", "purged", n)
	writeJSON(rw, PurgeResult{Purged: n})
}
