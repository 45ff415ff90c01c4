package web_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/monitor"
)

// fakeMonitor answers with fixed statuses and, per metric, values spread
// evenly over the range asked (value i at from + i*span/len), and records
// each range asked.
type fakeMonitor struct {
	status map[int64]monitor.Status
	values map[string][]float64

	mu    sync.Mutex
	spans map[string]time.Duration // metric: to - from of the last Range
}

func (f *fakeMonitor) Status(id int64) (monitor.Status, bool) {
	s, ok := f.status[id]
	return s, ok
}

func (f *fakeMonitor) Range(ctx context.Context, id int64, metric string, from, to time.Time) (*monitor.Series, error) {
	f.mu.Lock()
	f.spans[metric] = to.Sub(from)
	f.mu.Unlock()
	vs, ok := f.values[metric]
	if !ok {
		return nil, myt.Errorf(myt.ENOTFOUND, "Platform %d has no history of %s.", id, metric)
	}
	s := &monitor.Series{PlatformID: id, Metric: metric}
	step := to.Sub(from) / time.Duration(len(vs))
	for i, v := range vs {
		s.Points = append(s.Points, monitor.Point{Time: from.Add(time.Duration(i) * step), Value: v, Min: v, Max: v})
	}
	return s, nil
}

func (f *fakeMonitor) span(metric string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spans[metric]
}

// chartSVG returns the <svg> of the chart figure id, or "".
func chartSVG(body, id string) string {
	m := regexp.MustCompile(`(?s)<figure class="chart" id="` + id + `">(.*?)</figure>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestPlatformPageShowsHealthAndCharts checks that a running platform's
// page shows the monitor's components (with the reason of one down),
// an SVG chart per metric whose polyline follows the points, "no data
// yet" for a metric without history, range links that change the range
// asked, and that the dashboard shows each platform's health.
func TestPlatformPageShowsHealthAndCharts(t *testing.T) {
	mon := &fakeMonitor{
		status: map[int64]monitor.Status{},
		values: map[string][]float64{
			monitor.MetricMessagesIn: {1, 2, 3, 4},
			monitor.MetricStored:     {2, 2, 2, 2},
			monitor.MetricQueueDepth: {0, 30, 10, 5},
			monitor.MetricDiskUsed:   {0.5, 0.42},
		},
		spans: map[string]time.Duration{},
	}
	e := newEnvWith(t, false, mon)
	c := e.setup()
	c.addAWS("my-aws")
	ids := map[string]int64{}
	for _, name := range []string{"greenhouse", "barn", "cellar", "attic"} {
		r := c.post("/platforms/new", wizardForm(name))
		if r.status != http.StatusSeeOther {
			t.Fatalf("create %s: %d\n%s", name, r.status, r.body)
		}
		id, err := myt.ParseID(strings.TrimPrefix(strings.SplitN(r.location, "?", 2)[0], "/platforms/"))
		if err != nil {
			t.Fatalf("create %s: location %q", name, r.location)
		}
		ids[name] = id
	}
	now := time.Now()
	mon.status[ids["greenhouse"]] = monitor.Status{PlatformID: ids["greenhouse"], Monitored: true, Time: now, Polls: 3, Components: []monitor.ComponentState{
		{Name: monitor.ComponentWorker, Up: true},
		{Name: monitor.ComponentBroker, Up: false, Reason: "management API, queue myt.ingest: HTTP 401: the credentials were refused"},
		{Name: monitor.ComponentDatabase, Up: true},
		{Name: monitor.ComponentGrafana, Up: true},
	}}
	mon.status[ids["barn"]] = monitor.Status{PlatformID: ids["barn"], Monitored: true, Time: now, Components: []monitor.ComponentState{
		{Name: monitor.ComponentWorker, Up: false, Reason: "worker 1 /readyz: HTTP 503"}, {Name: monitor.ComponentBroker, Up: true},
	}}
	for _, name := range []string{"greenhouse", "barn", "cellar"} {
		e.setStatus(name, myt.StatusRunning)
	}

	page := c.get("/platforms/" + itoa(ids["greenhouse"]))
	if page.status != http.StatusOK {
		t.Fatalf("platform page: %d\n%s", page.status, page.body)
	}
	for _, want := range []string{
		`id="health"`, `data-testid="health"><span class="dot" aria-hidden="true"></span><span class="sr-only">Health: </span>degraded`,
		`<strong>Broker (RabbitMQ)</strong> <span class="hl-state">down</span><span class="hl-reason">management API, queue myt.ingest: HTTP 401: the credentials were refused</span>`,
		`<strong>Worker</strong> <span class="hl-state">up</span>`, `<strong>Grafana</strong> <span class="hl-state">up</span>`,
		`<strong>Database</strong> <span class="hl-state">up</span>`, `<strong>Disk</strong> <span class="hl-state">up</span> <span class="muted">· 42 % used</span>`,
		`<a href="/platforms/` + itoa(ids["greenhouse"]) + `?range=24h#metrics" title="last 24 hours">24h</a>`,
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("platform page lacks %q", want)
		}
	}
	// Values 1..4 at 0, 1/4, 2/4, 3/4 of the range, 0..4 high.
	in := chartSVG(page.body, "chart-messages-in-total")
	if !strings.Contains(in, `<svg viewBox="0 0 600 160"`) || !strings.Contains(in, `<polyline points="0,120 150,80 300,40 450,0"`) {
		t.Errorf("messages in chart:\n%s", in)
	}
	if !strings.Contains(in, `aria-label="Messages in, last 1 hour: now 4/s, between 0/s and 4/s."`) || !strings.Contains(in, "<title>Messages in, last 1 hour: now 4/s") {
		t.Errorf("messages in chart has no text alternative:\n%s", in)
	}
	// A constant series: a flat line at the top of 0..2.
	if st := chartSVG(page.body, "chart-stored-total"); !strings.Contains(st, `points="0,0 150,0 300,0 450,0"`) {
		t.Errorf("stored chart:\n%s", st)
	}
	if q := chartSVG(page.body, "chart-queue-depth"); !strings.Contains(q, `points="0,160 150,0 300,106.7 450,133.3"`) || !strings.Contains(q, "<strong>5</strong>") {
		t.Errorf("queue depth chart:\n%s", q)
	}
	if d := chartSVG(page.body, "chart-disk-used-ratio"); !strings.Contains(d, `points="0,0 300,25.6"`) || !strings.Contains(d, "42 %") {
		t.Errorf("disk chart:\n%s", d)
	}
	if dl := chartSVG(page.body, "chart-dead-lettered-total"); strings.Contains(dl, "<svg") || !strings.Contains(dl, "No data yet") ||
		!strings.Contains(dl, `aria-label="Dead-lettered, last 1 hour: no data yet."`) {
		t.Errorf("a metric without history:\n%s", dl)
	}
	if n := strings.Count(page.body, `<figure class="chart"`); n != 7 {
		t.Errorf("%d charts, want 7", n)
	}
	if got := mon.span(monitor.MetricMessagesIn); got != time.Hour {
		t.Errorf("default range asked: %s, want 1h", got)
	}

	// The range links change the range asked of the history.
	for key, want := range map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1h": time.Hour} {
		page := c.get("/platforms/" + itoa(ids["greenhouse"]) + "?range=" + key)
		if page.status != http.StatusOK {
			t.Fatalf("range %s: %d", key, page.status)
		}
		for _, m := range []string{monitor.MetricMessagesIn, monitor.MetricWorkerLag, monitor.MetricDiskUsed} {
			if got := mon.span(m); got != want {
				t.Errorf("range %s: %s asked over %s, want %s", key, m, got, want)
			}
		}
		if !strings.Contains(page.body, `?range=`+key+`#metrics" aria-current="page"`) {
			t.Errorf("range %s is not marked current", key)
		}
	}
	if r := c.get("/platforms/" + itoa(ids["greenhouse"]) + "?range=2y"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "range") {
		t.Errorf("range 2y: %d, want 400 naming the range", r.status)
	}

	// A worker down is down; a running platform the poller does not know
	// is not monitored; one that does not run shows no health at all.
	if p := c.get("/platforms/" + itoa(ids["barn"])); !strings.Contains(p.body, `Health: </span>down`) || !strings.Contains(p.body, "worker 1 /readyz: HTTP 503") {
		t.Errorf("barn: no worker down")
	}
	if p := c.get("/platforms/" + itoa(ids["attic"])); strings.Contains(p.body, `id="health"`) || strings.Contains(p.body, `<svg viewBox="0 0 600`) {
		t.Errorf("a designed platform shows health or charts")
	}
	dash := c.get("/")
	for name, want := range map[string]string{"greenhouse": "degraded", "barn": "down", "cellar": "not monitored", "attic": ""} {
		m := regexp.MustCompile(`(?s)<a href="/platforms/` + itoa(ids[name]) + `" class="stretched">.*?</div>`).FindString(dash.body)
		got := ""
		if h := regexp.MustCompile(`Health: </span>([a-z ]+)</span>`).FindStringSubmatch(m); h != nil {
			got = h[1]
		}
		if got != want {
			t.Errorf("dashboard: %s health %q, want %q\n%s", name, got, want, m)
		}
	}

	// Without a monitor the page shows neither health nor charts.
	e2 := newEnv(t, false)
	c2 := e2.setup()
	c2.addAWS("my-aws")
	r := c2.post("/platforms/new", wizardForm("greenhouse"))
	e2.setStatus("greenhouse", myt.StatusRunning)
	if p := c2.get(strings.SplitN(r.location, "?", 2)[0]); p.status != http.StatusOK || strings.Contains(p.body, `id="health"`) || strings.Contains(p.body, "chart-grid") {
		t.Errorf("without a monitor: %d, health or charts shown", p.status)
	}
	if d := c2.get("/"); strings.Contains(d.body, "Health: ") {
		t.Errorf("without a monitor the dashboard shows health")
	}
}
