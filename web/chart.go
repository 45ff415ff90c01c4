package web

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Chart geometry: every chart is drawn in this viewBox and scaled by CSS.
const (
	chartW = 600
	chartH = 160
)

// chartPoint is one value of a chart at a time.
type chartPoint struct {
	T time.Time
	V float64
}

// chartPlot is a series scaled into the chart's viewBox: one polyline per
// run of points without a gap (a platform that was down, or MyT stopped,
// leaves a gap rather than a line across it), and single points that
// have no neighbour as dots.
type chartPlot struct {
	// Lines are polyline "points" attributes ("x,y x,y ...").
	Lines []string
	// Dots are isolated points.
	Dots [][2]float64
	// Lo and Hi are the values at the bottom and top of the viewBox.
	Lo, Hi float64
	// Empty is true when there is not enough to draw (fewer than two
	// points): the chart says "no data yet".
	Empty bool
}

// plotChart scales points (oldest first) into a w×h viewBox: time from
// from (x 0) to to (x w), values from Lo (y h) to Hi (y 0). Lo is 0 unless
// a value is negative; Hi is the largest value, or Lo+1 when every value
// is Lo (a flat line at the bottom, not a division by zero). Two points
// further apart than three times the median spacing are not joined. NaN
// and infinite values are left out.
func plotChart(points []chartPoint, from, to time.Time, w, h float64) chartPlot {
	ps := make([]chartPoint, 0, len(points))
	for _, p := range points {
		if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
			ps = append(ps, p)
		}
	}
	var pl chartPlot
	if len(ps) < 2 {
		pl.Empty, pl.Hi = true, 1
		return pl
	}
	lo, hi := 0.0, ps[0].V
	for _, p := range ps {
		lo, hi = min(lo, p.V), max(hi, p.V)
	}
	if hi <= lo {
		hi = lo + 1
	}
	pl.Lo, pl.Hi = lo, hi
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	gaps := make([]time.Duration, 0, len(ps)-1)
	for i := 1; i < len(ps); i++ {
		gaps = append(gaps, ps[i].T.Sub(ps[i-1].T))
	}
	slices.Sort(gaps)
	maxGap := 3 * gaps[len(gaps)/2]
	if maxGap <= 0 {
		maxGap = math.MaxInt64 // points at one time: nothing to measure a gap by
	}
	x := func(t time.Time) float64 { return clamp(t.Sub(from).Seconds()/span*w, 0, w) }
	y := func(v float64) float64 { return h - (v-lo)/(hi-lo)*h }

	var run []chartPoint
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			pl.Dots = append(pl.Dots, [2]float64{round1(x(run[0].T)), round1(y(run[0].V))})
		default:
			var b strings.Builder
			for i, p := range run {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(strconv.FormatFloat(round1(x(p.T)), 'f', -1, 64))
				b.WriteByte(',')
				b.WriteString(strconv.FormatFloat(round1(y(p.V)), 'f', -1, 64))
			}
			pl.Lines = append(pl.Lines, b.String())
		}
		run = run[:0]
	}
	for i, p := range ps {
		if i > 0 && p.T.Sub(ps[i-1].T) > maxGap {
			flush()
		}
		run = append(run, p)
	}
	flush()
	return pl
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(hi, v)) }

// round1 rounds to one decimal: enough in a 600-wide viewBox, and short.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
