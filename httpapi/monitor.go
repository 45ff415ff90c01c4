package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/monitor"
)

// Monitor gives running platforms' health and history (monitor.Poller's
// Status and monitor.History's Range), as web.Monitor.
type Monitor interface {
	Status(platformID int64) (monitor.Status, bool)
	Range(ctx context.Context, platformID int64, metric string, from, to time.Time) (*monitor.Series, error)
}

// MetricPoint is one point of a metric's history.
type MetricPoint struct {
	Time  time.Time `json:"t"`
	Value float64   `json:"v"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
}

// MetricSeries is the answer of GET .../metrics/{metric}.
type MetricSeries struct {
	Metric string `json:"metric"`
	// Kind is gauge or counter; a counter's values are rates per second.
	Kind string `json:"kind"`
	// Resolution is raw, 5m or 1h.
	Resolution string        `json:"resolution"`
	Points     []MetricPoint `json:"points"`
}

func (s *Server) platformHealth(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := s.cfg.Platforms.FindPlatformByID(r.Context(), id); err != nil {
		return err
	}
	if s.cfg.Monitor == nil {
		return myt.Errorf(myt.ENOTFOUND, "This server does not monitor platforms.")
	}
	st, ok := s.cfg.Monitor.Status(id)
	if !ok {
		st = monitor.Status{PlatformID: id, Err: "not polled: the platform is not running"}
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) platformMetric(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := s.cfg.Platforms.FindPlatformByID(r.Context(), id); err != nil {
		return err
	}
	if s.cfg.Monitor == nil {
		return myt.Errorf(myt.ENOTFOUND, "This server does not monitor platforms.")
	}
	bad := func(field, msg string) error {
		return &myt.Error{Code: myt.EINVALID, Message: "The query is not valid.", Fields: []myt.FieldError{{Field: field, Message: msg}}}
	}
	q := r.URL.Query()
	to := time.Now()
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			return bad("to", "an RFC 3339 time, e.g. 2026-12-02T15:04:05Z")
		}
	}
	from := to.Add(-time.Hour)
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			return bad("from", "an RFC 3339 time, e.g. 2026-12-02T14:04:05Z")
		}
	}
	if v := q.Get("range"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 400*24*time.Hour {
			return bad("range", "a duration such as 1h, 24h or 168h")
		}
		from = to.Add(-d)
	}
	series, err := s.cfg.Monitor.Range(r.Context(), id, r.PathValue("metric"), from, to)
	if err != nil {
		return err
	}
	out := MetricSeries{Metric: series.Metric, Kind: series.Kind.String(), Resolution: series.Tier.String(), Points: make([]MetricPoint, len(series.Points))}
	for i, p := range series.Points {
		out.Points[i] = MetricPoint{Time: p.Time, Value: p.Value, Min: p.Min, Max: p.Max}
	}
	return writeJSON(w, http.StatusOK, out)
}
