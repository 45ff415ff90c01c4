// Package sinktest is the conformance test every sink passes against its
// real database: idempotent schema, exact round trip of typed and untyped
// records, no duplicate on rewrite or redelivery, rejection of records the
// database cannot store, and retention (Expire) where the sink deletes old
// records itself.
package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// New builds an unconnected sink from options (DSN and Log are filled in
// by the caller's closure).
type New func(o sink.Options) sink.Sink

// Caps says what a sink can check (some databases cannot reject a value).
type Caps struct {
	// NoNested: nested objects/arrays come back as JSON strings.
	NoNested bool
}

// Run runs the conformance suite; table must be fresh for this run.
func Run(t *testing.T, newSink New, table string, caps Caps) {
	t.Run("untyped", func(t *testing.T) { run(t, newSink, table+"_doc", nil, caps) })
	t.Run("typed", func(t *testing.T) {
		run(t, newSink, table+"_typed", map[string]string{"temp": "float", "count": "int", "ok": "bool", "name": "string"}, caps)
	})
}

// Records makes n records with distinct ids, devices dev-0..dev-2, ts one
// second apart from base.
func Records(n int, base time.Time, typed bool) []record.Record {
	out := make([]record.Record, n)
	for i := range out {
		dev := fmt.Sprintf("dev-%d", i%3)
		f := map[string]any{
			"temp":  json.Number(fmt.Sprintf("%d.5", 20+i)),
			"count": json.Number(fmt.Sprint(i)),
			"ok":    i%2 == 0,
			"name":  fmt.Sprintf("n%d", i),
		}
		if !typed {
			f["extra"] = "x"
		}
		out[i] = record.Record{
			ID: fmt.Sprintf("id-%06d", i), Device: dev, Topic: "myt/" + dev + "/env",
			TS: base.Add(time.Duration(i) * time.Second), Fields: f,
		}
	}
	return out
}

func connect(t *testing.T, newSink New, table string, fields map[string]string) sink.Sink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := newSink(sink.Options{Table: table, Fields: fields})
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// normalize makes exported fields comparable with what was written.
func normalize(fields map[string]any, declared map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range fields {
		if typ, ok := declared[k]; ok {
			c, err := record.Coerce(v, typ)
			if err != nil {
				out[k] = fmt.Sprintf("uncoercible %v", v)
				continue
			}
			out[k] = c
			continue
		}
		out[k] = numbers(v)
	}
	return out
}

// numbers turns every number, at any depth, into float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number, float64, int64:
		f, _ := record.Coerce(x, "float")
		return f
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = numbers(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = numbers(e)
		}
		return a
	}
	return v
}

func export(t *testing.T, s sink.Sink, q sink.Query) []record.Record {
	t.Helper()
	ex, ok := s.(sink.Exporter)
	if !ok {
		t.Fatal("sink does not implement sink.Exporter")
	}
	var got []record.Record
	err := ex.Export(context.Background(), q, func(r record.Record) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return got
}

func run(t *testing.T, newSink New, table string, fields map[string]string, caps Caps) {
	ctx := context.Background()
	s := connect(t, newSink, table, fields)
	// Schema creation is idempotent: a second worker start works.
	s2 := connect(t, newSink, table, fields)
	s2.Close()

	base := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	recs := Records(50, base, fields == nil)
	if fields == nil {
		recs[1].Fields["nested"] = map[string]any{"a": json.Number("1"), "b": []any{"x", true}}
	}
	if err := s.Write(ctx, recs[:30]); err != nil {
		t.Fatalf("write: %v", err)
	}
	// Rewriting overlapping records, some flagged redelivered, adds none twice.
	again := append([]record.Record(nil), recs[20:]...)
	for i := range again[:10] {
		again[i].Redelivered = true
	}
	if err := s.Write(ctx, again); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	got := export(t, s, sink.Query{})
	if len(got) != len(recs) {
		t.Fatalf("exported %d records, wrote %d distinct", len(got), len(recs))
	}
	for i, r := range got {
		w := recs[i]
		if r.ID != w.ID || r.Device != w.Device || r.Topic != w.Topic || !r.TS.Equal(w.TS) {
			t.Errorf("record %d: got %s %s %s %v, want %s %s %s %v", i, r.ID, r.Device, r.Topic, r.TS, w.ID, w.Device, w.Topic, w.TS)
		}
		want := normalize(w.Fields, fields)
		gotF := normalize(r.Fields, fields)
		if caps.NoNested {
			if n, ok := want["nested"]; ok {
				b, _ := json.Marshal(n)
				want["nested"] = string(b)
			}
		}
		if diff := cmp.Diff(want, gotF); diff != "" {
			t.Errorf("record %s fields (-want +got):\n%s", w.ID, diff)
		}
	}
	// Export filters.
	sub := export(t, s, sink.Query{From: base.Add(10 * time.Second), To: base.Add(20 * time.Second), Device: "dev-1"})
	var wantIDs, gotIDs []string
	for _, r := range recs[10:20] {
		if r.Device == "dev-1" {
			wantIDs = append(wantIDs, r.ID)
		}
	}
	for _, r := range sub {
		gotIDs = append(gotIDs, r.ID)
	}
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Errorf("filtered export (-want +got):\n%s", diff)
	}
	// Bounds finer than a millisecond (a user's range taken from an
	// exported ts): from inclusive, to exclusive, to the microsecond.
	at := recs[5].TS
	if one := export(t, s, sink.Query{From: at, To: at.Add(time.Microsecond)}); len(one) != 1 || one[0].ID != recs[5].ID {
		t.Errorf("export of [%s, +1µs): %d records, want only %s", at.Format(time.RFC3339Nano), len(one), recs[5].ID)
	}
	if none := export(t, s, sink.Query{From: at.Add(-time.Microsecond), To: at}); len(none) != 0 {
		t.Errorf("export of [%s -1µs, %[1]s): %d records, want none", at.Format(time.RFC3339Nano), len(none))
	}
	if fields != nil {
		// A value that does not fit its declared type names its record.
		bad := Records(3, base.Add(time.Hour), false)
		bad[1].Fields["temp"] = "warm"
		err := s.Write(ctx, bad)
		var inv *record.InvalidError
		if !errors.As(err, &inv) || inv.ID != bad[1].ID {
			t.Errorf("write with a bad typed value: err = %v, want InvalidError for %s", err, bad[1].ID)
		}
	}
	if p, ok := s.(sink.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
	}
	t.Logf("%s: wrote 30+30 (10 overlapping, 10 redelivered), exported %d, filtered %d", table, len(got), len(sub))
	expire(t, s, base.Add(10*time.Second), fields == nil)
}

// expire checks retention: with more than two chunks of old records added,
// Expire deletes exactly the records before cutoff and keeps the rest.
func expire(t *testing.T, s sink.Sink, cutoff time.Time, untyped bool) {
	t.Helper()
	ex, ok := s.(sink.Expirer)
	if !ok {
		t.Log("sink does not implement sink.Expirer: the database's own retention applies")
		return
	}
	ctx := context.Background()
	old := Records(2*sink.ExpireChunk+7, cutoff.Add(-72*time.Hour), untyped)
	for i := range old {
		old[i].ID = "old-" + old[i].ID
	}
	for i := 0; i < len(old); i += 1000 {
		if err := s.Write(ctx, old[i:min(i+1000, len(old))]); err != nil {
			t.Fatalf("write old records: %v", err)
		}
	}
	before := export(t, s, sink.Query{})
	var keep []string
	for _, r := range before {
		if !r.TS.Before(cutoff) {
			keep = append(keep, r.ID)
		}
	}
	n, err := ex.Expire(ctx, cutoff)
	if err != nil {
		t.Fatalf("expire: %v", err)
	}
	if want := int64(len(before) - len(keep)); n != want {
		t.Errorf("expire deleted %d records, want %d", n, want)
	}
	var kept []string
	for _, r := range export(t, s, sink.Query{}) {
		kept = append(kept, r.ID)
	}
	if diff := cmp.Diff(keep, kept); diff != "" {
		t.Errorf("records after expire (-want +got):\n%s", diff)
	}
	if n, err := ex.Expire(ctx, cutoff); err != nil || n != 0 {
		t.Errorf("second expire: deleted %d, err %v; want 0, nil", n, err)
	}
	t.Logf("expire before %s: deleted %d of %d, kept %d", cutoff.Format(time.RFC3339), len(before)-len(keep), len(before), len(keep))
}

// Logger returns a slog.Logger writing to t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
