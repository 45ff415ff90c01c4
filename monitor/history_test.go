package monitor_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

// fixture is a real SQLite database with one local platform.
type fixture struct {
	db       *sqlite.DB
	svc      *sqlite.Services
	store    *sqlite.MonitorStore
	platform *myt.Platform
	ctx      context.Context // the owner's
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, svc: sqlite.NewServices(db), store: sqlite.NewMonitorStore(db)}
	if _, err := f.svc.Users.CreateUser(context.Background(), myt.UserCreate{Username: "ada", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.Users.Authenticate(context.Background(), "ada", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	f.ctx = myt.NewContextWithAuth(context.Background(), a)
	f.platform = f.addPlatform(t, "shed")
	return f
}

func (f *fixture) addPlatform(t testing.TB, name string) *myt.Platform {
	t.Helper()
	d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: " + name + "}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Platforms.CreatePlatform(f.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	p.Status = myt.StatusRunning
	p.DeployedRevision = 1
	return p
}

// t0 is a bucket-aligned instant.
var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestRawRangeRatesSurviveCounterReset: samples appended by poll are read
// back as raw points over a 1 h range; a counter's rate is its difference
// over time, and when the counter restarts from zero (a worker restart)
// its new value is the increase, not a negative rate.
func TestRawRangeRatesSurviveCounterReset(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	counter := []float64{0, 60, 120, 30, 90} // restarted between the 3rd and 4th poll
	gauge := []float64{5, 7, 3, 9, 1}
	for i := range counter {
		err := f.store.Append(ctx, f.platform.ID, t0.Add(time.Duration(i)*30*time.Second), []monitor.Sample{
			{Metric: monitor.MetricStored, Kind: monitor.Counter, Value: counter[i]},
			{Metric: monitor.MetricQueueDepth, Kind: monitor.Gauge, Value: gauge[i]},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	h := &monitor.History{Store: f.store, Now: func() time.Time { return t0.Add(10 * time.Minute) }}
	s, err := h.Range(ctx, f.platform.ID, monitor.MetricStored, t0.Add(-50*time.Minute), t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if s.Tier != monitor.TierRaw || s.Kind != monitor.Counter {
		t.Fatalf("1 h range read tier %s kind %s, want raw counter", s.Tier, s.Kind)
	}
	want := []float64{2, 2, 1, 2} // 60/30, 60/30, reset: 30/30, 60/30
	if len(s.Points) != len(want) {
		t.Fatalf("got %d rate points, want %d: %+v", len(s.Points), len(want), s.Points)
	}
	for i, p := range s.Points {
		if !near(p.Value, want[i]) || !p.Time.Equal(t0.Add(time.Duration(i+1)*30*time.Second)) {
			t.Errorf("point %d = %v at %s, want %v at %s", i, p.Value, p.Time, want[i], t0.Add(time.Duration(i+1)*30*time.Second))
		}
	}
	g, err := h.Range(ctx, f.platform.ID, monitor.MetricQueueDepth, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range g.Points {
		if p.Value != gauge[i] {
			t.Errorf("gauge point %d = %v, want %v", i, p.Value, gauge[i])
		}
	}
	// A later range starting after the reset still has the point before
	// it as its baseline.
	s, err = h.Range(ctx, f.platform.ID, monitor.MetricStored, t0.Add(90*time.Second), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Points) != 2 || !near(s.Points[0].Value, 1) || !near(s.Points[1].Value, 2) {
		t.Errorf("range from the reset: %+v, want rates 1, 2", s.Points)
	}
}

func TestRangeErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h := &monitor.History{Store: f.store}
	if _, err := h.Range(ctx, f.platform.ID, "nope", t0, t0.Add(time.Hour)); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("unknown metric: %v, want ENOTFOUND", err)
	}
	if _, err := h.Range(ctx, f.platform.ID, "nope", t0, t0); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("empty range: %v, want EINVALID", err)
	}
	err := f.store.Append(ctx, f.platform.ID+100, t0, []monitor.Sample{{Metric: "x", Value: 1}})
	if myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("append for an unknown platform: %v, want ENOTFOUND", err)
	}
}

// fill fills 8 days of raw points, one a minute, ending at end: a counter
// growing 10/s that restarts from zero at restart, and a gauge that is
// the minute of the hour. Raw points are written with Put, as Append
// would one by one (tens of thousands of polls take too long for a test).
func fill(t *testing.T, f *fixture, end, restart time.Time) (counter, gauge monitor.SeriesInfo) {
	t.Helper()
	ctx := context.Background()
	start := end.Add(-8 * 24 * time.Hour)
	if err := f.store.Append(ctx, f.platform.ID, start, []monitor.Sample{
		{Metric: monitor.MetricStored, Kind: monitor.Counter, Value: 0},
		{Metric: monitor.MetricQueueDepth, Kind: monitor.Gauge, Value: 0},
	}); err != nil {
		t.Fatal(err)
	}
	counter, _, _ = f.store.Lookup(ctx, f.platform.ID, monitor.MetricStored)
	gauge, _, _ = f.store.Lookup(ctx, f.platform.ID, monitor.MetricQueueDepth)
	var cr, gr []monitor.Row
	base := 0.0
	for ts := start.Add(time.Minute); ts.Before(end); ts = ts.Add(time.Minute) {
		if ts.Equal(restart) {
			base = ts.Sub(start).Seconds() * 10 // the counter starts again from 0 at ts - 1 min
			base -= 600
		}
		v := ts.Sub(start).Seconds()*10 - base
		cr = append(cr, monitor.Row{Time: ts, Value: v, Min: v, Max: v, N: 1})
		g := float64(ts.Minute())
		gr = append(gr, monitor.Row{Time: ts, Value: g, Min: g, Max: g, N: 1})
	}
	if err := f.store.Put(ctx, counter.ID, monitor.TierRaw, cr); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Put(ctx, gauge.ID, monitor.TierRaw, gr); err != nil {
		t.Fatal(err)
	}
	return counter, gauge
}

// TestCompactRollsUpExpiresAndRangeReadsEachTier: after compaction the
// raw points older than 24 h are gone (deleted in bounded batches), their
// five-minute and hourly rollups remain, and Range reads 1 h from raw
// points, 24 h from five-minute points and 7 d from hourly ones, with the
// counter's rate (10/s) right in every tier, across a restart, and the
// gauge's mean, minimum and maximum right per bucket.
func TestCompactRollsUpExpiresAndRangeReadsEachTier(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := t0.Add(8*24*time.Hour + 2*time.Minute) // 2 minutes into a bucket
	restart := now.Add(-3 * 24 * time.Hour).Add(17 * time.Minute)
	_, gauge := fill(t, f, now, restart)
	h := &monitor.History{Store: f.store, Now: func() time.Time { return now }, RawStep: time.Minute, Batch: 500}
	st, err := h.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rawKept := int(24 * time.Hour / time.Minute)
	if want := (8*24*60 - rawKept) * 2; st.Deleted[monitor.TierRaw] < want-4 || st.Deleted[monitor.TierRaw] > want+4 {
		t.Errorf("deleted %d raw points, want about %d", st.Deleted[monitor.TierRaw], want)
	}
	if st.Batches < st.Deleted[monitor.TierRaw]/500 {
		t.Errorf("%d points deleted in %d batches of at most 500", st.Deleted[monitor.TierRaw], st.Batches)
	}
	raw, err := f.store.Rows(ctx, gauge.ID, monitor.TierRaw, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || raw[0].Time.Before(now.Add(-24*time.Hour)) {
		t.Errorf("raw points older than 24 h remain: oldest %v", raw[0].Time)
	}
	// Complete buckets only: the one now is in is not rolled up yet.
	fives, err := f.store.Rows(ctx, gauge.ID, monitor.Tier5m, time.Time{}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if last := fives[len(fives)-1].Time; !last.Equal(now.Truncate(5 * time.Minute).Add(-5 * time.Minute)) {
		t.Errorf("last 5m bucket %s, want the last complete one", last)
	}
	b := fives[len(fives)/2] // minutes m..m+4 of an hour: mean m+2
	if m := float64(b.Time.Minute()); !near(b.Value, m+2) || b.Min != m || b.Max != m+4 || b.N != 5 {
		t.Errorf("5m gauge bucket at %s = %+v, want mean %v min %v max %v n 5", b.Time, b, m+2, m, m+4)
	}
	// A second run has nothing left to do.
	if st2, err := h.Compact(ctx); err != nil || st2.Rolled != [3]int{} || st2.Deleted != [3]int{} {
		t.Errorf("second compaction did %+v, %v; want nothing", st2, err)
	}

	for _, c := range []struct {
		span time.Duration
		tier monitor.Tier
	}{{time.Hour, monitor.TierRaw}, {24 * time.Hour, monitor.Tier5m}, {7 * 24 * time.Hour, monitor.Tier1h}} {
		s, err := h.Range(ctx, f.platform.ID, monitor.MetricStored, now.Add(-c.span), now)
		if err != nil {
			t.Fatal(err)
		}
		if s.Tier != c.tier {
			t.Errorf("%s range read tier %s, want %s", c.span, s.Tier, c.tier)
		}
		if len(s.Points) == 0 {
			t.Fatalf("%s range: no points", c.span)
		}
		for i, p := range s.Points {
			first := i == 0 && c.tier != monitor.TierRaw // a bucket partly before the data's start
			if !first && !near(p.Value, 10) {
				t.Errorf("%s range: rate at %s = %v, want 10/s", c.span, p.Time, p.Value)
			}
		}
		// The newest point is at most a step old: rollups of the tail are
		// computed from the finer tier.
		if last := s.Points[len(s.Points)-1].Time; now.Sub(last) > max(c.tier.Step(), time.Minute) {
			t.Errorf("%s range ends at %s, %s before now", c.span, last, now.Sub(last))
		}
		g, err := h.Range(ctx, f.platform.ID, monitor.MetricQueueDepth, now.Add(-c.span), now)
		if err != nil {
			t.Fatal(err)
		}
		if c.tier == monitor.Tier1h {
			p := g.Points[len(g.Points)/2]
			if !near(p.Value, 29.5) || p.Min != 0 || p.Max != 59 {
				t.Errorf("hourly gauge point %+v, want mean 29.5 min 0 max 59", p)
			}
		}
	}
}

// TestRetentionIsConfigurable: a shorter five-minute retention expires
// five-minute points while hourly ones stay; an invalid one names the
// field.
func TestRetentionIsConfigurable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := t0.Add(8 * 24 * time.Hour)
	_, gauge := fill(t, f, now, time.Time{})
	h := &monitor.History{Store: f.store, Now: func() time.Time { return now }, RawStep: time.Minute,
		Retention: monitor.Retention{Raw: time.Hour, FiveMin: 2 * 24 * time.Hour, Hour: 6 * 24 * time.Hour}}
	if _, err := h.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tier monitor.Tier
		keep time.Duration
	}{{monitor.TierRaw, time.Hour}, {monitor.Tier5m, 2 * 24 * time.Hour}, {monitor.Tier1h, 6 * 24 * time.Hour}} {
		rows, err := f.store.Rows(ctx, gauge.ID, c.tier, time.Time{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Fatalf("tier %s: nothing kept", c.tier)
		}
		if oldest := rows[0].Time; oldest.Before(now.Add(-c.keep)) || oldest.After(now.Add(-c.keep).Add(max(c.tier.Step(), time.Minute))) {
			t.Errorf("tier %s: oldest point %s, want just after %s", c.tier, oldest, now.Add(-c.keep))
		}
	}
	bad := &monitor.History{Store: f.store, Retention: monitor.Retention{Raw: 24 * time.Hour, FiveMin: time.Hour, Hour: 48 * time.Hour}}
	if _, err := bad.Compact(ctx); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("5m retention shorter than raw: %v, want EINVALID", err)
	}
}

// TestWorkerCountersAreSummedPerWorker: with two workers each has its own
// counter series, so when one restarts only its counter resets; Range of
// the metric sums the workers' rates (a summed counter would have read
// the restart as the whole sum's reset: 1.5/s instead of 2.5/s).
func TestWorkerCountersAreSummedPerWorker(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	w1 := []float64{0, 60, 120, 180}
	w2 := []float64{0, 30, 15, 45} // restarted between the 2nd and 3rd poll
	for i := range w1 {
		err := f.store.Append(ctx, f.platform.ID, t0.Add(time.Duration(i)*30*time.Second), []monitor.Sample{
			{Metric: monitor.WorkerMetric(monitor.MetricStored, 1), Kind: monitor.Counter, Value: w1[i]},
			{Metric: monitor.WorkerMetric(monitor.MetricStored, 2), Kind: monitor.Counter, Value: w2[i]},
			{Metric: monitor.MetricQueueDepth, Kind: monitor.Gauge, Value: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	h := &monitor.History{Store: f.store, Now: func() time.Time { return t0.Add(10 * time.Minute) }}
	s, err := h.Range(ctx, f.platform.ID, monitor.MetricStored, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{3, 2.5, 3} // (60+30)/30, (60+15)/30, (60+30)/30
	if len(s.Points) != len(want) || s.Kind != monitor.Counter {
		t.Fatalf("points %+v (%s), want %d rates", s.Points, s.Kind, len(want))
	}
	for i, p := range s.Points {
		if !near(p.Value, want[i]) {
			t.Errorf("rate %d = %v, want %v", i, p.Value, want[i])
		}
	}
	// A gauge named like the counter's prefix is not summed in.
	if g, err := h.Range(ctx, f.platform.ID, monitor.MetricQueueDepth, t0, t0.Add(time.Hour)); err != nil || len(g.Points) != 4 || g.Points[0].Value != 1 {
		t.Errorf("gauge range %+v, %v", g, err)
	}
}

// TestFillingBucketRateIsExact: on a 24 h range the newest five-minute
// bucket is still filling; its rate is its increase over the span that
// increase was counted over (the sample before the bucket to its last
// one), so a steady 10/s reads 10/s, not less because the next poll has
// not come yet.
func TestFillingBucketRateIsExact(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Polls every 30 s at 15 s past, 10 messages a second, for 22 minutes.
	start := t0.Add(15 * time.Second)
	var last time.Time
	for i := 0; i < 44; i++ {
		last = start.Add(time.Duration(i) * 30 * time.Second)
		if err := f.store.Append(ctx, f.platform.ID, last, []monitor.Sample{{Metric: monitor.MetricStored, Kind: monitor.Counter, Value: float64(i) * 300}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, lag := range []time.Duration{time.Second, 25 * time.Second} {
		now := last.Add(lag)
		h := &monitor.History{Store: f.store, Now: func() time.Time { return now }}
		s, err := h.Range(ctx, f.platform.ID, monitor.MetricStored, now.Add(-24*time.Hour), now)
		if err != nil {
			t.Fatal(err)
		}
		if s.Tier != monitor.Tier5m || len(s.Points) == 0 {
			t.Fatalf("24 h range: tier %s, %d points", s.Tier, len(s.Points))
		}
		for i, p := range s.Points[1:] { // the first bucket has no sample before it
			if !near(p.Value, 10) {
				t.Errorf("%s after the last poll: bucket %d (%s) reads %v/s, want 10/s", lag, i+1, p.Time.Format("15:04"), p.Value)
			}
		}
	}
}
