package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

// Retention says how long each tier keeps its points.
type Retention struct {
	Raw, FiveMin, Hour time.Duration
}

// DefaultRetention keeps raw points 24 hours, five-minute points 30 days
// and hourly points a year.
var DefaultRetention = Retention{Raw: 24 * time.Hour, FiveMin: 30 * 24 * time.Hour, Hour: 365 * 24 * time.Hour}

func (r Retention) of(t Tier) time.Duration {
	switch t {
	case Tier5m:
		return r.FiveMin
	case Tier1h:
		return r.Hour
	}
	return r.Raw
}

// Validate checks that every tier keeps its points at least as long as
// the tier below it, so a rollup never lacks its source.
func (r Retention) Validate() error {
	switch {
	case r.Raw < 10*time.Minute:
		return myt.Errorf(myt.EINVALID, "monitor retention raw: %s is too short: keep raw points at least 10m, so they are rolled up before they expire.", r.Raw)
	case r.FiveMin < r.Raw:
		return myt.Errorf(myt.EINVALID, "monitor retention 5m: %s is shorter than the raw retention %s.", r.FiveMin, r.Raw)
	case r.Hour < r.FiveMin:
		return myt.Errorf(myt.EINVALID, "monitor retention 1h: %s is shorter than the 5m retention %s.", r.Hour, r.FiveMin)
	}
	return nil
}

// Point is one point of a queried series.
type Point struct {
	// Time is the sample's time (raw) or the bucket's start.
	Time time.Time
	// Value is the gauge's value (its mean in a rollup) or, for a
	// counter, its rate per second.
	Value float64
	// Min and Max are a gauge's extremes within the bucket; Value for raw
	// points and counters.
	Min, Max float64
}

// Series is the answer to History.Range.
type Series struct {
	PlatformID int64
	Metric     string
	Kind       Kind
	// Tier is the resolution Range chose.
	Tier   Tier
	Points []Point
}

// History answers range queries over a Store and rolls its points up into
// coarser tiers. Its zero fields take defaults; it is safe for concurrent
// use when its Store is.
type History struct {
	Store     Store
	Retention Retention // DefaultRetention when zero
	// RawStep is the poll interval, used to count raw points when
	// choosing a tier (DefaultInterval when zero).
	RawStep time.Duration
	// MaxPoints is the most points Range returns for a tier before it
	// picks a coarser one (1000 when zero): 1 h reads raw points, 24 h
	// five-minute points, 7 d hourly points.
	MaxPoints int
	// Batch bounds one expiry DELETE (1000 when zero).
	Batch int
	Now   func() time.Time
	Log   *slog.Logger
}

func (h *History) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *History) retention() Retention {
	if h.Retention == (Retention{}) {
		return DefaultRetention
	}
	return h.Retention
}

func (h *History) step(t Tier) time.Duration {
	if t != TierRaw {
		return t.Step()
	}
	if h.RawStep > 0 {
		return h.RawStep
	}
	return DefaultInterval
}

// TierFor returns the tier Range reads for [from, to): the finest whose
// retention still covers from and that gives at most MaxPoints points.
func (h *History) TierFor(from, to time.Time) Tier {
	maxPoints := h.MaxPoints
	if maxPoints <= 0 {
		maxPoints = 1000
	}
	span, oldest := to.Sub(from), h.now()
	for _, t := range Tiers[:len(Tiers)-1] {
		if span/h.step(t) > time.Duration(maxPoints) {
			continue
		}
		if from.Before(oldest.Add(-h.retention().of(t))) {
			continue
		}
		return t
	}
	return Tier1h
}

// Range returns the platform's metric over [from, to) at the tier TierFor
// chooses: gauges as values, counters as rates per second (a counter that
// went down restarted from zero: its new value is the increase). Points
// of a rollup tier newer than its last stored bucket are rolled up from
// the finer tier on the fly, so the last minutes are never missing.
// ENOTFOUND when the platform has no such metric; EINVALID when to is not
// after from.
func (h *History) Range(ctx context.Context, platformID int64, metric string, from, to time.Time) (*Series, error) {
	if !to.After(from) {
		return nil, myt.Errorf(myt.EINVALID, "range: to (%s) must be after from (%s).", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	// A counter of several workers is kept per worker (metric@1,
	// metric@2, ...: WorkerMetric) so that one worker's restart is its own
	// reset; the series' rates are summed.
	var series []SeriesInfo
	all, err := h.Store.Series(ctx, platformID)
	if err != nil {
		return nil, err
	}
	for _, si := range all {
		if si.Metric == metric || (si.Kind == Counter && strings.HasPrefix(si.Metric, metric+workerSeparator)) {
			series = append(series, si)
		}
	}
	if len(series) == 0 {
		return nil, myt.Errorf(myt.ENOTFOUND, "Platform %d has no history of %s.", platformID, metric)
	}
	tier := h.TierFor(from, to)
	s := &Series{PlatformID: platformID, Metric: metric, Kind: series[0].Kind, Tier: tier}
	if len(series) == 1 {
		s.Points, err = h.points(ctx, series[0], tier, from, to)
		return s, err
	}
	sum := map[time.Time]float64{}
	for _, si := range series {
		ps, err := h.points(ctx, si, tier, from, to)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			sum[p.Time] += p.Value
		}
	}
	for _, t := range slices.SortedFunc(maps.Keys(sum), time.Time.Compare) {
		v := sum[t]
		s.Points = append(s.Points, Point{Time: t, Value: v, Min: v, Max: v})
	}
	return s, nil
}

// points returns one series' points of tier in [from, to): gauges as
// stored, counters as rates.
func (h *History) points(ctx context.Context, si SeriesInfo, tier Tier, from, to time.Time) ([]Point, error) {
	rows, prev, err := h.rows(ctx, si, tier, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]Point, 0, len(rows))
	now := h.now()
	for _, r := range rows {
		p := Point{Time: r.Time, Value: r.Value, Min: r.Min, Max: r.Max}
		if si.Kind == Counter {
			switch {
			case tier == TierRaw && prev == nil:
				prev = &Row{Time: r.Time, Value: r.Value}
				continue // the first value has no rate yet
			case tier == TierRaw:
				dt := r.Time.Sub(prev.Time).Seconds()
				p.Value = 0
				if dt > 0 {
					p.Value = Increase(prev.Value, r.Value) / dt
				}
				prev = &Row{Time: r.Time, Value: r.Value}
			default:
				// A bucket still filling is divided by the span its
				// increase was counted over (from the sample before it
				// to its last one), not by its whole width nor by the
				// time up to now, which a poll has not covered yet.
				width := tier.Step()
				if end := r.Time.Add(width); end.After(now) {
					if r.To.After(r.From) && !r.From.IsZero() {
						width = r.To.Sub(r.From)
					} else {
						width = max(now.Sub(r.Time), time.Second)
					}
				}
				p.Value = r.Inc / width.Seconds()
			}
			p.Min, p.Max = p.Value, p.Value
		}
		out = append(out, p)
	}
	return out, nil
}

// rows returns the series' points of tier in [from, to): the stored ones,
// then a rollup of the finer tier after the last stored bucket. For raw
// counters it also returns the point before from (nil when none).
func (h *History) rows(ctx context.Context, si SeriesInfo, tier Tier, from, to time.Time) ([]Row, *Row, error) {
	if tier == TierRaw {
		rows, err := h.Store.Rows(ctx, si.ID, TierRaw, from, to)
		if err != nil || si.Kind != Counter {
			return rows, nil, err
		}
		last, ok, err := h.Store.Last(ctx, si.ID, TierRaw, from)
		if err != nil || !ok {
			return rows, nil, err
		}
		return rows, &last, nil
	}
	step := tier.Step()
	start := from.Truncate(step)
	rows, err := h.Store.Rows(ctx, si.ID, tier, start, to)
	if err != nil {
		return nil, nil, err
	}
	tail := start
	if n := len(rows); n > 0 {
		tail = rows[n-1].Time.Add(step)
	}
	if !tail.Before(to) {
		return rows, nil, nil
	}
	finer := tier - 1
	src, prev, err := h.rows(ctx, si, finer, tail, to)
	if err != nil {
		return nil, nil, err
	}
	return append(rows, rollup(si.Kind, finer, src, prev, step)...), nil, nil
}

// Increase is a counter's increase from prev to cur: their difference,
// or cur when the counter went down (it restarted from zero).
func Increase(prev, cur float64) float64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// rollup aggregates rows of tier src (oldest first) into buckets of step:
// gauges keep the mean weighted by sample count, the minimum and maximum;
// counters keep the last value and the increase within the bucket. For a
// raw counter, prev is the point before rows (nil when none: the first
// row's increase is unknown and counts as 0).
func rollup(kind Kind, src Tier, rows []Row, prev *Row, step time.Duration) []Row {
	var out []Row
	for i := range rows {
		r := rows[i]
		b := r.Time.Truncate(step)
		if len(out) == 0 || !out[len(out)-1].Time.Equal(b) {
			out = append(out, Row{Time: b, Value: r.Value, Min: r.Min, Max: r.Max})
			if kind == Counter && src == TierRaw {
				out[len(out)-1].From = r.Time
				if prev != nil {
					out[len(out)-1].From = prev.Time
				}
			}
		}
		o := &out[len(out)-1]
		if kind == Counter && src == TierRaw {
			o.To = r.Time
		}
		n := max(r.N, 1)
		if kind == Counter {
			inc := r.Inc
			if src == TierRaw {
				inc = 0
				if prev != nil {
					inc = Increase(prev.Value, r.Value)
				}
			}
			o.Inc += inc
			o.Value, o.Min, o.Max = r.Value, r.Value, r.Value
		} else {
			o.Value = (o.Value*float64(o.N) + r.Value*float64(n)) / float64(o.N+n)
			o.Min, o.Max = min(o.Min, r.Min), max(o.Max, r.Max)
		}
		o.N += n
		prev = &rows[i]
	}
	return out
}

// Compact rolls complete buckets up (raw into five-minute points, those
// into hourly points), then deletes the points each tier's retention
// expired, Batch at a time. It is idempotent: run it every few minutes.
func (h *History) Compact(ctx context.Context) (CompactStats, error) {
	var st CompactStats
	if err := h.retention().Validate(); err != nil {
		return st, err
	}
	now := h.now()
	series, err := h.Store.Series(ctx, 0)
	if err != nil {
		return st, err
	}
	for _, si := range series {
		for _, dst := range []Tier{Tier5m, Tier1h} {
			n, err := h.downsample(ctx, si, dst, now)
			if err != nil {
				return st, fmt.Errorf("roll up %s of platform %d into %s points: %w", si.Metric, si.PlatformID, dst, err)
			}
			st.Rolled[dst] += n
		}
	}
	batch := h.Batch
	if batch <= 0 {
		batch = 1000
	}
	for _, t := range Tiers {
		before := now.Add(-h.retention().of(t))
		for {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			n, err := h.Store.DeleteBefore(ctx, t, before, batch)
			if err != nil {
				return st, err
			}
			st.Deleted[t] += n
			if n > 0 {
				st.Batches++
			}
			if n < batch {
				break
			}
		}
	}
	return st, nil
}

// CompactStats says what Compact did, by tier.
type CompactStats struct {
	Rolled  [3]int // rollup points written, by destination tier
	Deleted [3]int // expired points deleted, by tier
	Batches int    // DELETE statements that deleted something
}

// downsample writes the complete buckets of dst after its newest one,
// from the tier below.
func (h *History) downsample(ctx context.Context, si SeriesInfo, dst Tier, now time.Time) (int, error) {
	step, src := dst.Step(), dst-1
	end := now.Truncate(step)
	start := time.UnixMilli(0)
	if last, ok, err := h.Store.Last(ctx, si.ID, dst, end); err != nil {
		return 0, err
	} else if ok {
		start = last.Time.Add(step)
	}
	if !start.Before(end) {
		return 0, nil
	}
	rows, err := h.Store.Rows(ctx, si.ID, src, start, end)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	var prev *Row
	if src == TierRaw && si.Kind == Counter {
		last, ok, err := h.Store.Last(ctx, si.ID, src, start)
		if err != nil {
			return 0, err
		}
		if ok {
			prev = &last
		}
	}
	out := rollup(si.Kind, src, rows, prev, step)
	return len(out), h.Store.Put(ctx, si.ID, dst, out)
}

// Run compacts every interval until ctx ends, logging failures.
func (h *History) Run(ctx context.Context, every time.Duration) {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if st, err := h.Compact(ctx); err != nil && ctx.Err() == nil {
			log.Error("monitor history compaction failed", "err", err)
		} else if err == nil {
			log.Debug("monitor history compacted", "rolled5m", st.Rolled[Tier5m], "rolled1h", st.Rolled[Tier1h],
				"deletedRaw", st.Deleted[TierRaw], "deleted5m", st.Deleted[Tier5m], "deleted1h", st.Deleted[Tier1h])
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
