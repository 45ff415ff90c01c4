package web

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestPlotChart(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	from, to := t0, at(100)

	// Scaling: x from from..to over 0..100, y from 0 (bottom, 50) to the
	// largest value (top, 0).
	pl := plotChart([]chartPoint{{at(0), 0}, {at(10), 5}, {at(20), 10}, {at(30), 2.5}}, from, to, 100, 50)
	want := chartPlot{Lines: []string{"0,50 10,25 20,0 30,37.5"}, Lo: 0, Hi: 10}
	if !reflect.DeepEqual(pl, want) {
		t.Errorf("scaled:\n got %+v\nwant %+v", pl, want)
	}

	// A gap of more than three steps splits the line; a point alone
	// between gaps is a dot.
	pl = plotChart([]chartPoint{{at(0), 4}, {at(1), 4}, {at(2), 2}, {at(20), 1}, {at(40), 2}, {at(41), 4}}, from, to, 100, 40)
	want = chartPlot{Lines: []string{"0,0 1,0 2,20", "40,20 41,0"}, Dots: [][2]float64{{20, 30}}, Lo: 0, Hi: 4}
	if !reflect.DeepEqual(pl, want) {
		t.Errorf("gaps:\n got %+v\nwant %+v", pl, want)
	}

	// A constant series is a flat line at the bottom (0..value), and an
	// all-zero one too (0..1), never a division by zero.
	pl = plotChart([]chartPoint{{at(0), 7}, {at(50), 7}, {at(100), 7}}, from, to, 100, 50)
	if want := []string{"0,0 50,0 100,0"}; !reflect.DeepEqual(pl.Lines, want) || pl.Hi != 7 {
		t.Errorf("constant: %+v", pl)
	}
	pl = plotChart([]chartPoint{{at(0), 0}, {at(50), 0}}, from, to, 100, 50)
	if want := []string{"0,50 50,50"}; !reflect.DeepEqual(pl.Lines, want) || pl.Lo != 0 || pl.Hi != 1 {
		t.Errorf("zero: %+v", pl)
	}

	// Negative values move the bottom below 0.
	pl = plotChart([]chartPoint{{at(0), -2}, {at(50), 2}}, from, to, 100, 40)
	if want := []string{"0,40 50,0"}; !reflect.DeepEqual(pl.Lines, want) || pl.Lo != -2 {
		t.Errorf("negative: %+v", pl)
	}

	// Points outside the range are clamped to its edges; NaN is left out.
	pl = plotChart([]chartPoint{{at(-10), 1}, {at(50), math.NaN()}, {at(60), 1}, {at(120), 1}}, from, to, 100, 10)
	if want := []string{"0,0 60,0 100,0"}; !reflect.DeepEqual(pl.Lines, want) {
		t.Errorf("clamped: %+v", pl)
	}

	// Empty and one point: nothing to draw.
	for _, ps := range [][]chartPoint{nil, {{at(5), 3}}, {{at(5), math.Inf(1)}, {at(6), 1}}} {
		if pl := plotChart(ps, from, to, 100, 50); !pl.Empty || pl.Lines != nil || pl.Dots != nil {
			t.Errorf("%v: %+v, want empty", ps, pl)
		}
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1: "1", 0.126: "0.13", 12.34: "12.3", 1234.6: "1235", -0.001: "0", 2.5: "2.5"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
