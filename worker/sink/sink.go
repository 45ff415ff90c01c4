// Package sink defines how the worker writes records to a database. Each
// database kind implements Sink in its own subpackage (mysql, postgres,
// mongodb, influxdb), shaped like a Telegraf output: Connect, Write, Close.
package sink

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/myt-iot/myt/worker/record"
)

// Sink writes batches of records to one table, collection or measurement.
//
// Connect connects and creates the schema idempotently (safe on every
// start). Write stores the whole batch or returns an error; it is
// idempotent on Record.ID: writing a record again never adds a second row.
// Write returns a *record.InvalidError naming a record that can never be
// stored (the caller dead-letters it and writes the rest), an error
// wrapping ErrRejected when the database refused the batch for its content
// without saying which record (the caller splits the batch), and any other
// error for a transient failure (the caller retries with backoff). A Sink
// is used by one goroutine at a time, except Ping, Export and Expire, which
// may run concurrently with Write.
type Sink interface {
	Connect(ctx context.Context) error
	Write(ctx context.Context, batch []record.Record) error
	Close() error
}

// Pinger is implemented by sinks that can check the database is reachable
// (used by /readyz).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Exporter is implemented by sinks that can read records back, in time
// order, streaming (bounded memory).
type Exporter interface {
	Export(ctx context.Context, q Query, fn func(record.Record) error) error
}

// Expirer is implemented by sinks that delete old records themselves
// (database.retentionDays). Expire deletes every record whose ts is before
// cutoff, in bounded chunks so that concurrent writes are not held up for
// long, and returns how many it deleted. It may run concurrently with
// Write. A sink without it relies on the database's own retention
// (InfluxDB: the bucket's retention period).
type Expirer interface {
	Expire(ctx context.Context, cutoff time.Time) (int64, error)
}

// ExpireChunk is how many rows one delete statement removes at most.
const ExpireChunk = 5000

// Query selects records to export: From inclusive, To exclusive (zero
// means unbounded), Device empty means all.
type Query struct {
	From, To time.Time
	Device   string
}

// ErrRejected marks a batch that the database refused for its content.
var ErrRejected = errors.New("database rejected the data")

type rejected struct{ err error }

func (r rejected) Error() string        { return r.err.Error() }
func (r rejected) Unwrap() []error      { return []error{ErrRejected, r.err} }
func (r rejected) Is(target error) bool { return target == ErrRejected }

// Reject wraps err so that errors.Is(err, ErrRejected) holds.
func Reject(err error) error { return rejected{err} }

// Options is what every sink is built from.
type Options struct {
	DSN   string
	Table string
	// Fields maps declared field names to float|int|bool|string.
	Fields map[string]string
	// Timescale asks the postgres sink to use a hypertable (it does so
	// anyway when the extension is installed).
	Timescale bool
	Log       *slog.Logger
}

// FieldNames returns the declared field names, sorted.
func (o Options) FieldNames() []string {
	return slices.Sorted(maps.Keys(o.Fields))
}

// Logger returns o.Log or a discarding logger.
func (o Options) Logger() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.New(slog.DiscardHandler)
}
