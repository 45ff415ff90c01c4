package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the worker's Prometheus metrics, on their own registry.
type Metrics struct {
	Registry      *prometheus.Registry
	Consumed      prometheus.Counter
	Stored        prometheus.Counter
	Dropped       prometheus.Counter
	Dead          *prometheus.CounterVec
	WriteRetries  prometheus.Counter
	Batches       prometheus.Histogram
	WriteSeconds  prometheus.Histogram
	HandlerSecond prometheus.Histogram
	QueueDepth    prometheus.Gauge
	BrokerUp      prometheus.Gauge
	DBUp          prometheus.Gauge
	Restarts      prometheus.Counter
	Imported      prometheus.Counter
	Expired       prometheus.Counter
	Replayed      prometheus.Counter
	Purged        prometheus.Counter
}

// NewMetrics registers the worker metrics on a new registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		Registry:     r,
		Consumed:     prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_consumed_total", Help: "Messages taken from the queue and acknowledged."}),
		Stored:       prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_stored_total", Help: "Records committed to the database."}),
		Dropped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_dropped_total", Help: "Messages the handler dropped on purpose (returned None)."}),
		Dead:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "myt_worker_dead_lettered_total", Help: "Messages sent to the dead-letter queue, by reason."}, []string{"reason"}),
		WriteRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_write_retries_total", Help: "Batch writes retried after a transient database error."}),
		Batches: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "myt_worker_batch_size", Help: "Messages per batch.",
			Buckets: []float64{1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000}}),
		WriteSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "myt_worker_write_seconds", Help: "Database write latency per batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		HandlerSecond: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "myt_worker_handler_seconds", Help: "Python handler latency per batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "myt_worker_queue_depth", Help: "Ready messages in the ingest queue (sampled)."}),
		BrokerUp:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "myt_worker_broker_up", Help: "1 when connected to the broker."}),
		DBUp:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "myt_worker_db_up", Help: "1 when the last database write or ping succeeded."}),
		Restarts:   prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_handler_restarts_total", Help: "Python handler restarts after a timeout or crash."}),
		Imported:   prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_imported_total", Help: "Records written through /v1/import."}),
		Expired:    prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_expired_total", Help: "Records deleted because they were older than database.retentionDays."}),
		Replayed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_dead_replayed_total", Help: "Dead letters moved back to the ingest queue by POST /v1/dead/replay."}),
		Purged:     prometheus.NewCounter(prometheus.CounterOpts{Name: "myt_worker_dead_purged_total", Help: "Dead letters deleted by DELETE /v1/dead."}),
	}
	for _, c := range []prometheus.Collector{m.Consumed, m.Stored, m.Dropped, m.Dead, m.WriteRetries, m.Batches, m.WriteSeconds,
		m.HandlerSecond, m.QueueDepth, m.BrokerUp, m.DBUp, m.Restarts, m.Imported, m.Expired, m.Replayed, m.Purged,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	for _, reason := range []string{ReasonInvalidJSON, ReasonHandlerError, ReasonHandlerTimeout, ReasonHandlerCrash, ReasonHandlerResult, ReasonInvalidField, ReasonDBRejected} {
		m.Dead.WithLabelValues(reason)
	}
	return m
}
