package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/monitor"
)

// Monitor is what the UI reads of the monitoring (package monitor): the
// poller's last status of a platform, and its history. myt serve passes
// its monitor.Poller and monitor.History; nil shows no health or charts.
type Monitor interface {
	// Status is the platform's last poll (monitor.Poller.Status); ok is
	// false when the platform is not polled.
	Status(platformID int64) (s monitor.Status, ok bool)
	// Range is the platform's metric over [from, to)
	// (monitor.History.Range): gauges as values, counters as rates.
	Range(ctx context.Context, platformID int64, metric string, from, to time.Time) (*monitor.Series, error)
}

// Health at a glance, on the dashboard and the platform page.
const (
	healthUp           = "up"
	healthDegraded     = "degraded"
	healthDown         = "down"
	healthChecking     = "checking"
	healthNotMonitored = "not monitored"
)

// healthBadge is a running platform's health at a glance.
type healthBadge struct {
	State string
	// Title says why (the components down, or why it is not monitored).
	Title string
}

// Class is the badge's CSS class.
func (h healthBadge) Class() string { return "health-" + strings.ReplaceAll(h.State, " ", "-") }

// health sums up a status: down when the worker is down or every
// component is, degraded when another component is down, up otherwise.
func health(st monitor.Status, ok bool) healthBadge {
	switch {
	case !ok:
		return healthBadge{healthNotMonitored, "MyT is not polling this platform yet."}
	case !st.Monitored:
		return healthBadge{healthNotMonitored, st.Err}
	case st.Time.IsZero() || len(st.Components) == 0:
		return healthBadge{healthChecking, "The first check has not finished yet."}
	}
	var down []string
	workerDown := false
	for _, c := range st.Components {
		if !c.Up {
			down = append(down, componentName(c.Name, 1))
			workerDown = workerDown || c.Name == monitor.ComponentWorker
		}
	}
	switch {
	case len(down) == 0:
		return healthBadge{healthUp, "Every component answered the last check."}
	case workerDown || len(down) == len(st.Components):
		return healthBadge{healthDown, "Down: " + strings.Join(down, ", ") + "."}
	}
	return healthBadge{healthDegraded, "Down: " + strings.Join(down, ", ") + "."}
}

// componentName is how the UI names a monitored component.
func componentName(c string, workers int) string {
	switch c {
	case monitor.ComponentWorker:
		if workers > 1 {
			return "Workers"
		}
		return "Worker"
	case monitor.ComponentBroker:
		return "Broker (RabbitMQ)"
	case monitor.ComponentDatabase:
		return "Database"
	case monitor.ComponentBrokerByWorker:
		return "Worker's broker connection"
	case monitor.ComponentGrafana:
		return "Grafana"
	}
	return c
}

// componentView is one line of the platform page's health list.
type componentView struct {
	Name   string
	Up     bool
	Reason string
	// Detail is a reading shown when up (disk use).
	Detail string
}

// chartRanges are the ranges a chart offers, as ?range= values.
var chartRanges = []struct {
	Key   string
	Span  time.Duration
	Label string
}{
	{"1h", time.Hour, "1 hour"},
	{"24h", 24 * time.Hour, "24 hours"},
	{"7d", 7 * 24 * time.Hour, "7 days"},
}

// chartDef is a chart of the platform page: which metric, and how its
// values read.
type chartDef struct {
	Metric, Title string
	// Unit follows a value ("/s", " s", " %"); Scale multiplies it.
	Unit  string
	Scale float64
}

// charts are the platform page's charts, in order.
var charts = []chartDef{
	{monitor.MetricMessagesIn, "Messages in", "/s", 1},
	{monitor.MetricStored, "Stored", "/s", 1},
	{monitor.MetricDeadLettered, "Dead-lettered", "/s", 1},
	{monitor.MetricQueueDepth, "Queue depth", "", 1},
	{monitor.MetricWorkerLag, "Worker lag", " s", 1},
	{monitor.MetricHandlerErrors, "Handler errors", "/s", 1},
	{monitor.MetricDiskUsed, "Disk use", " %", 100},
}

// chartView is one chart, ready for the template.
type chartView struct {
	ID, Title string
	Plot      chartPlot
	// Last is the newest value with its unit; Lo and Hi label the axis.
	Last, Lo, Hi string
	// Label is the chart's text alternative.
	Label string
	Err   string
}

// monitorView is the platform page's health and charts.
type monitorView struct {
	Health     healthBadge
	Checked    time.Time
	Err        string
	Components []componentView
	Charts     []chartView
	// Range is the chosen ?range= key; Ranges the links.
	Range, RangeLabel string
	Ranges            []rangeLink
	W, H              int
}

type rangeLink struct {
	Key, Label string
	Current    bool
}

// diskWarn is the disk use the health list shows as a problem.
const diskWarn = 0.9

// monitorFor builds the platform page's health and charts; nil when
// there is no monitor or the platform does not run.
func (s *server) monitorFor(r *http.Request, p *myt.Platform) (*monitorView, error) {
	if s.cfg.Monitor == nil || p.Status != myt.StatusRunning {
		return nil, nil
	}
	key := r.URL.Query().Get("range")
	if key == "" {
		key = chartRanges[0].Key
	}
	var span time.Duration
	v := &monitorView{Range: key, W: chartW, H: chartH}
	for _, cr := range chartRanges {
		v.Ranges = append(v.Ranges, rangeLink{cr.Key, cr.Label, cr.Key == key})
		if cr.Key == key {
			span, v.RangeLabel = cr.Span, cr.Label
		}
	}
	if span == 0 {
		return nil, myt.Errorf(myt.EINVALID, "range: %q is not one of 1h, 24h, 7d.", key)
	}
	st, ok := s.cfg.Monitor.Status(p.ID)
	v.Health, v.Checked = health(st, ok), st.Time
	if ok && st.Monitored {
		v.Err = st.Err
	}
	workers := 1
	if p.Design != nil {
		workers = p.Design.Spec.Processing.Workers
	}
	for _, c := range st.Components {
		v.Components = append(v.Components, componentView{Name: componentName(c.Name, workers), Up: c.Up, Reason: c.Reason})
	}

	to := time.Now()
	from := to.Add(-span)
	for _, d := range charts {
		cv, last, err := s.chart(r.Context(), p.ID, d, from, to, v.RangeLabel)
		if err != nil {
			return nil, err
		}
		v.Charts = append(v.Charts, cv)
		if d.Metric == monitor.MetricDiskUsed && ok && st.Monitored && !math.IsNaN(last) {
			c := componentView{Name: "Disk", Up: last < diskWarn, Detail: formatValue(last*100) + " % used"}
			if !c.Up {
				c.Reason = formatValue(last*100) + " % of the data directory's file system is used"
			}
			v.Components = append(v.Components, c)
		}
	}
	return v, nil
}

// chart reads one chart's series; last is its newest raw value (NaN when
// none). A metric without history is an empty chart; other errors are
// the chart's, logged, so one bad series does not hide the page.
func (s *server) chart(ctx context.Context, id int64, d chartDef, from, to time.Time, rangeLabel string) (chartView, float64, error) {
	cv := chartView{ID: "chart-" + strings.ReplaceAll(d.Metric, "_", "-"), Title: d.Title}
	series, err := s.cfg.Monitor.Range(ctx, id, d.Metric, from, to)
	switch {
	case myt.ErrorCode(err) == myt.ENOTFOUND:
		series = &monitor.Series{}
	case err != nil:
		if ctx.Err() != nil {
			return cv, math.NaN(), ctx.Err()
		}
		s.log.Error("monitor range", "platform", id, "metric", d.Metric, "err", err)
		cv.Err, cv.Plot = "The history could not be read.", chartPlot{Empty: true, Hi: 1}
		cv.Label = d.Title + ": the history could not be read."
		return cv, math.NaN(), nil
	}
	pts := make([]chartPoint, 0, len(series.Points))
	for _, p := range series.Points {
		pts = append(pts, chartPoint{p.Time, p.Value * d.Scale})
	}
	cv.Plot = plotChart(pts, from, to, chartW, chartH)
	cv.Lo, cv.Hi = formatValue(cv.Plot.Lo)+d.Unit, formatValue(cv.Plot.Hi)+d.Unit
	last := math.NaN()
	if n := len(pts); n > 0 {
		last = series.Points[n-1].Value
		cv.Last = formatValue(pts[n-1].V) + d.Unit
	}
	switch {
	case cv.Plot.Empty && cv.Last != "":
		cv.Label = fmt.Sprintf("%s, last %s: one reading so far, %s.", d.Title, rangeLabel, cv.Last)
	case cv.Plot.Empty:
		cv.Label = fmt.Sprintf("%s, last %s: no data yet.", d.Title, rangeLabel)
	default:
		cv.Label = fmt.Sprintf("%s, last %s: now %s, between %s and %s.", d.Title, rangeLabel, cv.Last, cv.Lo, cv.Hi)
	}
	return cv, last, nil
}

// formatValue writes v with about three significant digits.
func formatValue(v float64) string {
	a := math.Abs(v)
	prec := 2
	switch {
	case a >= 100:
		prec = 0
	case a >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// healthOf is a platform's health badge on the dashboard: nil when there
// is no monitor or the platform does not run.
func (s *server) healthOf(p *myt.Platform) *healthBadge {
	if s.cfg.Monitor == nil || p.Status != myt.StatusRunning {
		return nil
	}
	h := health(s.cfg.Monitor.Status(p.ID))
	return &h
}
