package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// fakeSink rejects batches holding a "bad" record (like a database that
// refuses a row without saying which), names "invalid" records, and fails
// transiently the first `down` calls.
// It also notes records written again without the Redelivered flag.
type fakeSink struct {
	down   int
	calls  int
	stored map[string]int
	seen   map[string]bool
	// unflagged are ids passed to Write a second time with Redelivered
	// false: a sink guarding only redelivered records could store them twice.
	unflagged []string
}

func (f *fakeSink) Connect(context.Context) error { return nil }
func (f *fakeSink) Close() error                  { return nil }
func (f *fakeSink) Write(_ context.Context, b []record.Record) error {
	f.calls++
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	for _, r := range b {
		if f.seen[r.ID] && !r.Redelivered {
			f.unflagged = append(f.unflagged, r.ID)
		}
		f.seen[r.ID] = true
	}
	if f.down > 0 {
		f.down--
		return errors.New("connection refused")
	}
	for _, r := range b {
		if r.Fields["invalid"] == true {
			return &record.InvalidError{ID: r.ID, Err: errors.New("not a float")}
		}
	}
	for _, r := range b {
		if r.Fields["bad"] == true {
			return sink.Reject(errors.New("value too long"))
		}
	}
	for _, r := range b {
		f.stored[r.ID]++
	}
	return nil
}

func TestWriteIsolatesBadRecords(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Retry.Min, cfg.Retry.Max = Dur(time.Millisecond), Dur(4*time.Millisecond)
	fs := &fakeSink{down: 3, stored: map[string]int{}}
	w := New(cfg, fs, slog.New(slog.DiscardHandler))
	const n = 500
	items := make([]item, n)
	owner := map[string]int{}
	var recs []record.Record
	bad := map[int]string{7: ReasonDBRejected, 123: ReasonDBRejected, 124: ReasonDBRejected, 300: ReasonInvalidField, 499: ReasonDBRejected}
	for i := range items {
		items[i].d = &amqp.Delivery{DeliveryTag: uint64(i + 1)}
		f := map[string]any{"i": i}
		switch bad[i] {
		case ReasonDBRejected:
			f["bad"] = true
		case ReasonInvalidField:
			f["invalid"] = true
		}
		r := record.Record{ID: fmt.Sprint("r", i), Fields: f}
		owner[r.ID] = i
		recs = append(recs, r)
		items[i].recs = []record.Record{r}
	}
	stored, err := w.write(context.Background(), recs, items, owner)
	if err != nil {
		t.Fatal(err)
	}
	var dead []int
	for i, it := range items {
		if it.dead != nil {
			dead = append(dead, i)
			if it.dead.Reason != bad[i] {
				t.Errorf("item %d dead for %s, want %s", i, it.dead.Reason, bad[i])
			}
		}
	}
	sort.Ints(dead)
	if len(dead) != len(bad) {
		t.Errorf("dead %v, want the %d bad ones", dead, len(bad))
	}
	if stored != n-len(bad) || len(fs.stored) != n-len(bad) {
		t.Errorf("stored %d (sink has %d), want %d", stored, len(fs.stored), n-len(bad))
	}
	for id, c := range fs.stored {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
	if len(fs.unflagged) > 0 {
		t.Errorf("%d records written again without Redelivered, e.g. %s", len(fs.unflagged), fs.unflagged[0])
	}
	t.Logf("%d records, %d bad: %d sink calls (3 transient failures), %d stored", n, len(bad), fs.calls, stored)
}

// A write that failed may have been applied in part (a connection reset
// mid insert): the retry must reach the sink flagged Redelivered, whatever
// the broker said, so that time-series sinks skip what is already there.
func TestWriteRetryIsRedelivered(t *testing.T) {
	for _, tc := range []struct {
		name string
		down int
		bad  bool
	}{
		{"transient", 2, false},
		{"rejected", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Retry.Min, cfg.Retry.Max = Dur(time.Millisecond), Dur(time.Millisecond)
			fs := &fakeSink{down: tc.down, stored: map[string]int{}}
			w := New(cfg, fs, slog.New(slog.DiscardHandler))
			const n = 4
			items := make([]item, n)
			owner := map[string]int{}
			recs := make([]record.Record, n)
			for i := range recs {
				items[i].d = &amqp.Delivery{DeliveryTag: uint64(i + 1)}
				recs[i] = record.Record{ID: fmt.Sprint("r", i), Fields: map[string]any{"bad": tc.bad && i == 0}}
				owner[recs[i].ID] = i
			}
			stored, err := w.write(context.Background(), recs, items, owner)
			if err != nil {
				t.Fatal(err)
			}
			want := n
			if tc.bad {
				want = n - 1
			}
			if stored != want || len(fs.stored) != want {
				t.Errorf("stored %d (sink has %d), want %d", stored, len(fs.stored), want)
			}
			if fs.calls < 2 {
				t.Fatalf("%d sink calls: the batch was not written again", fs.calls)
			}
			if len(fs.unflagged) > 0 {
				t.Errorf("written again without Redelivered: %v", fs.unflagged)
			}
		})
	}
}

func TestWithoutDropsWholeMessage(t *testing.T) {
	owner := map[string]int{"a": 0, "a#1": 0, "b": 1}
	got := without([]record.Record{{ID: "a"}, {ID: "b"}, {ID: "a#1"}}, owner, 0)
	if len(got) != 1 || got[0].ID != "b" {
		t.Errorf("without = %v", got)
	}
}
