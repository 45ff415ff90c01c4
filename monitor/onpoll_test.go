package monitor_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/monitor"
)

// fixedTarget answers every poll with the same reading.
type fixedTarget monitor.Reading

func (t fixedTarget) Poll(context.Context) monitor.Reading { return monitor.Reading(t) }

// TestOnPollSeesEachRecordedPoll: the hook alerts hang on is called once
// per recorded poll, after the samples are stored, with the samples the
// store got (the up_* gauges included) and the components' reasons.
func TestOnPollSeesEachRecordedPoll(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var got []monitor.Reading
	p := &monitor.Poller{Store: f.store, Interval: 20 * time.Millisecond,
		Targets: func(*myt.Platform) (monitor.Target, error) {
			return fixedTarget{
				Samples:    []monitor.Sample{{Metric: monitor.MetricQueueDepth, Value: 7}},
				Components: []monitor.ComponentState{{Name: monitor.ComponentDatabase, Reason: "db down"}},
			}, nil
		},
		OnPoll: func(id int64, at time.Time, r monitor.Reading) {
			if id != f.platform.ID || at.IsZero() {
				t.Errorf("OnPoll(%d, %v)", id, at)
			}
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		},
	}
	p.Sync([]*myt.Platform{f.platform})
	waitFor(t, "three polls", func() bool { return polls(p, f.platform.ID) >= 3 })
	p.Stop()
	mu.Lock()
	defer mu.Unlock()
	if n := polls(p, f.platform.ID); int64(len(got)) != n {
		t.Errorf("OnPoll called %d times for %d polls", len(got), n)
	}
	r := got[0]
	want := map[string]float64{monitor.MetricQueueDepth: 7, monitor.UpPrefix + monitor.ComponentDatabase: 0}
	if len(r.Samples) != len(want) {
		t.Errorf("samples %+v, want %v", r.Samples, want)
	}
	for _, s := range r.Samples {
		if v, ok := want[s.Metric]; !ok || v != s.Value {
			t.Errorf("sample %+v, want %v", s, want)
		}
	}
	if len(r.Components) != 1 || r.Components[0].Reason != "db down" {
		t.Errorf("components %+v", r.Components)
	}
	if v, ok := lastRaw(t, f, monitor.MetricQueueDepth); !ok || v != 7 {
		t.Errorf("queue_depth stored %v %v before the hook ran", v, ok)
	}
}
