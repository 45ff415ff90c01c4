package alert_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/myt-iot/myt/alert"
)

// TestUndeliveredSentOnceAtStart: events recorded just before a crash
// (no delivery, or delivered to one channel of two) are sent when an
// engine starts, to the channels that did not get them, once; an event
// already dispatched is not sent again, and neither is anything at the
// next start.
func TestUndeliveredSentOnceAtStart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	second := newReceiver(t)
	b, err := f.store.AddChannel(ctx, f.platform.ID, "second", alert.Webhook{URL: second.srv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	chans, err := f.store.Channels(ctx, f.platform.ID)
	if err != nil || len(chans) != 2 {
		t.Fatalf("channels %+v %v", chans, err)
	}
	ops := chans[0]
	if err := f.store.EnsureDefaults(ctx, f.platform.ID, alert.Defaults()); err != nil {
		t.Fatal(err)
	}
	rules, err := f.store.Rules(ctx, f.platform.ID)
	if err != nil {
		t.Fatal(err)
	}
	// As Observe records them, then the process dies.
	record := func(rule alert.Rule, state string) *alert.Event {
		t.Helper()
		ev := &alert.Event{PlatformID: f.platform.ID, RuleID: rule.ID, Rule: rule.Name, Kind: rule.Kind, State: state,
			Value: 1, Since: f.clock.Add(-2 * time.Minute), At: f.clock}
		if err := f.store.SaveState(ctx, rule, ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	done := record(rules[0], alert.Fired) // sent everywhere before the crash
	for _, c := range chans {
		f.store.RecordDelivery(ctx, done.ID, alert.Delivery{ChannelID: c.ID, Status: alert.Delivered, Attempts: 1, At: f.clock})
	}
	if err := f.store.MarkDispatched(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	half := record(rules[1], alert.Fired) // sent to ops, then the crash
	f.store.RecordDelivery(ctx, half.ID, alert.Delivery{ChannelID: ops.ID, Status: alert.Delivered, Attempts: 1, At: f.clock})
	none := record(rules[3], alert.Fired) // the crash right after recording

	runCtx, stop := context.WithCancel(ctx)
	e := f.engine(t, nil)
	ran := make(chan struct{})
	go func() { e.Run(runCtx); close(ran) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.recv.payloads()) < 1 || len(second.payloads()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: ops got %s, second got %s", states(f.recv.payloads()), states(second.payloads()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-ran
	if got := states(f.recv.payloads()); got != none.Rule+":firing" {
		t.Errorf("ops got %s, want only %s (it had %s)", got, none.Rule, half.Rule)
	}
	if got := states(second.payloads()); got != half.Rule+":firing,"+none.Rule+":firing" {
		t.Errorf("second got %s, want %s then %s", got, half.Rule, none.Rule)
	}
	for _, ev := range f.events(t) {
		var ids []int64
		for _, d := range ev.Deliveries {
			if d.Status == alert.Delivered {
				ids = append(ids, d.ChannelID)
			}
		}
		if !slices.Equal(ids, []int64{ops.ID, b.ID}) {
			t.Errorf("event %d (%s): delivered to %v, want both channels", ev.ID, ev.Rule, ids)
		}
	}
	// The next start has nothing left to send.
	if err := f.engine(t, nil).Redeliver(ctx); err != nil {
		t.Fatal(err)
	}
	if n, m := len(f.recv.payloads()), len(second.payloads()); n != 1 || m != 2 {
		t.Errorf("a second start sent more: ops %d, second %d notifications", n, m)
	}
	if left, err := f.store.Undispatched(ctx); err != nil || len(left) != 0 {
		t.Errorf("undispatched after the start: %+v %v", left, err)
	}
}
