// Package monitor watches running platforms: a Poller runs one poll loop
// per platform against its Target (the worker's /readyz and /metrics, the
// RabbitMQ management API, the data directory's disk use) and appends what
// it reads to a Store; a History answers range queries over the stored
// points and rolls them up into coarser tiers as they age (raw for 24 h,
// five-minute points for 30 days, hourly points for a year by default).
//
// The Store is implemented by the sqlite package (sqlite.MonitorStore).
// Charts, alert rules and the UI build on History and Poller.Status; they
// are not here yet (docs/monitor.md).
package monitor

import (
	"context"
	"strconv"
	"time"
)

// Kind says how a metric's values read.
type Kind int

const (
	// Gauge is a value that goes up and down (queue depth, disk use, a
	// component's up state). Rollups keep its mean, minimum and maximum.
	Gauge Kind = 0
	// Counter only grows, except that it restarts from zero when the
	// process that counts restarts (a worker restart, a broker restart).
	// Stored points keep the counter's value; rollups keep the last value
	// and the increase within the bucket; History.Range returns the rate
	// per second, resets accounted for.
	Counter Kind = 1
)

func (k Kind) String() string {
	if k == Counter {
		return "counter"
	}
	return "gauge"
}

// Metric names the Poller records. Counters end in _total; component
// states are gauges named UpPrefix+component, 1 up and 0 down.
const (
	MetricMessagesIn        = "messages_in_total"      // RabbitMQ: messages published into the ingest queue
	MetricConsumed          = "consumed_total"         // worker: messages taken and acknowledged
	MetricStored            = "stored_total"           // worker: records committed to the database
	MetricDropped           = "dropped_total"          // worker: messages the handler dropped on purpose
	MetricDeadLettered      = "dead_lettered_total"    // worker: messages dead-lettered, every reason
	MetricHandlerErrors     = "handler_errors_total"   // worker: dead-lettered by the handler (error, timeout, crash, result)
	MetricHandlerRestarts   = "handler_restarts_total" // worker: Python handler restarts
	MetricWriteRetries      = "write_retries_total"    // worker: batch writes retried
	MetricQueueDepth        = "queue_depth"            // RabbitMQ: ready messages in the ingest queue
	MetricQueueUnacked      = "queue_unacked"          // RabbitMQ: delivered, not yet acknowledged
	MetricWorkerLag         = "worker_lag_seconds"     // estimated: ready messages / acknowledge rate
	MetricDiskUsed          = "disk_used_ratio"        // the data directory's file system, 0..1
	UpPrefix                = "up_"                    // UpPrefix+component: 1 up, 0 down
	ComponentWorker         = "worker"                 // every worker's /readyz answered 200
	ComponentBroker         = "broker"                 // the management API answered for the ingest queue
	ComponentDatabase       = "database"               // the worker's myt_worker_db_up
	ComponentBrokerByWorker = "worker_broker"          // the worker's myt_worker_broker_up
	ComponentGrafana        = "grafana"                // Grafana's /api/health answered with its database ok
)

// workerSeparator joins a counter's name and its worker's number.
const workerSeparator = "@"

// WorkerMetric names the counter metric of worker n (1-based) of a
// platform with several workers: "stored_total@2". History.Range of
// "stored_total" sums the rates of every worker's series (and of the
// plain series, kept while the platform had one worker).
func WorkerMetric(metric string, n int) string {
	return metric + workerSeparator + strconv.Itoa(n)
}

// Sample is one reading of one metric.
type Sample struct {
	Metric string
	Kind   Kind
	Value  float64
}

// Tier is a resolution of the stored history.
type Tier int

const (
	// TierRaw holds one point per poll.
	TierRaw Tier = 0
	// Tier5m holds five-minute rollups.
	Tier5m Tier = 1
	// Tier1h holds hourly rollups.
	Tier1h Tier = 2
)

// Tiers lists the tiers, finest first.
var Tiers = []Tier{TierRaw, Tier5m, Tier1h}

// Step is the width of the tier's buckets; 0 for raw points.
func (t Tier) Step() time.Duration {
	switch t {
	case Tier5m:
		return 5 * time.Minute
	case Tier1h:
		return time.Hour
	}
	return 0
}

func (t Tier) String() string {
	switch t {
	case Tier5m:
		return "5m"
	case Tier1h:
		return "1h"
	}
	return "raw"
}

// Row is a stored point.
type Row struct {
	// Time is the sample's time (raw) or the bucket's start (rollups).
	Time time.Time
	// Value is the sample (raw), the mean (gauge rollup) or the counter's
	// last value in the bucket (counter rollup).
	Value float64
	// Min and Max are a gauge's extremes (Value for raw points).
	Min, Max float64
	// N counts the raw samples behind the point.
	N int64
	// Inc is a counter's increase within the bucket, resets accounted for
	// (0 for raw points and gauges).
	Inc float64
	// From and To, for a counter bucket rolled up from raw samples when
	// it is read (never stored), are the times of the sample its increase
	// starts from and of its last sample: the span Inc was counted over,
	// which a bucket still filling is divided by.
	From, To time.Time
}

// SeriesInfo identifies a stored series.
type SeriesInfo struct {
	ID         int64
	PlatformID int64
	Metric     string
	Kind       Kind
}

// Store keeps the monitoring history. Implementations are safe for
// concurrent use. Errors are the database's, wrapped; an unknown platform
// is myt.ENOTFOUND from Append (its series cannot exist).
type Store interface {
	// Append records the samples of one poll of the platform, taken at
	// at, as raw points; a metric seen for the first time creates its
	// series with the sample's Kind.
	Append(ctx context.Context, platformID int64, at time.Time, samples []Sample) error
	// Series lists the stored series of the platform, or of every
	// platform when platformID is 0.
	Series(ctx context.Context, platformID int64) ([]SeriesInfo, error)
	// Lookup returns the series of the platform's metric; ok is false
	// when there is none.
	Lookup(ctx context.Context, platformID int64, metric string) (s SeriesInfo, ok bool, err error)
	// Rows returns the series' points of tier with from <= Time < to,
	// oldest first.
	Rows(ctx context.Context, seriesID int64, tier Tier, from, to time.Time) ([]Row, error)
	// Last returns the series' newest point of tier before before; ok is
	// false when there is none.
	Last(ctx context.Context, seriesID int64, tier Tier, before time.Time) (r Row, ok bool, err error)
	// Put writes rollup points of tier, replacing points at the same
	// times.
	Put(ctx context.Context, seriesID int64, tier Tier, rows []Row) error
	// DeleteBefore deletes at most limit points of tier older than
	// before, oldest first, and reports how many it deleted.
	DeleteBefore(ctx context.Context, tier Tier, before time.Time, limit int) (int, error)
}
