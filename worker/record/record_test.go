package record_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/myt-iot/myt/worker/record"
)

func TestParseTS(t *testing.T) {
	want := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name string
		in   any
		want time.Time
	}{
		{"rfc3339", "2024-05-06T07:08:09Z", want},
		{"rfc3339 offset", "2024-05-06T09:08:09+02:00", want},
		{"rfc3339 nano", "2024-05-06T07:08:09.123456789Z", want.Add(123456789)},
		{"seconds", json.Number("1714979289"), want},
		{"seconds fraction", json.Number("1714979289.25"), want.Add(250 * time.Millisecond)},
		{"millis", json.Number("1714979289123"), want.Add(123 * time.Millisecond)},
		{"micros", json.Number("1714979289123456"), want.Add(123456 * time.Microsecond)},
		{"nanos exact", json.Number("1714979289123456789"), want.Add(123456789)},
		{"numeric string", "1714979289", want},
		{"float64", float64(1714979289), want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := record.ParseTS(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseTS(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range []any{"yesterday", true, map[string]any{}} {
		if _, err := record.ParseTS(bad); err == nil {
			t.Errorf("ParseTS(%v) did not fail", bad)
		}
	}
}

func TestDecode(t *testing.T) {
	recv := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	m := record.Message{RoutingKey: "myt.dev-1.env.temp", Body: []byte(`{"t":21.5,"ts":1714979289,"n":12345678901234567}`), Received: recv}
	in, err := record.Decode(m, "myt")
	if err != nil {
		t.Fatal(err)
	}
	if in.Device != "dev-1" || in.Topic != "myt/dev-1/env/temp" || in.Stream != "env/temp" {
		t.Errorf("topic parts: %+v", in)
	}
	if !in.TS.Equal(time.Unix(1714979289, 0)) || !in.TSFromPayload {
		t.Errorf("ts %v", in.TS)
	}
	if len(in.ID) != 32 {
		t.Errorf("hash id %q", in.ID)
	}
	in2, _ := record.Decode(m, "myt")
	if in2.ID != in.ID {
		t.Error("id not stable")
	}
	m.Body = []byte(`{"t":21.6}`)
	in3, _ := record.Decode(m, "myt")
	if in3.ID == in.ID || !in3.TS.Equal(recv) {
		t.Errorf("other body: id %q ts %v", in3.ID, in3.TS)
	}
	m.MessageID = "abc"
	in4, _ := record.Decode(m, "myt")
	if in4.ID != "abc" {
		t.Errorf("message id %q", in4.ID)
	}
	r := record.Passthrough(in)
	want := map[string]any{"t": json.Number("21.5"), "n": json.Number("12345678901234567")}
	if diff := cmp.Diff(want, r.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"t":`, `hello`, `{"a":1} {"b":2}`, ``} {
		m.Body = []byte(bad)
		if _, err := record.Decode(m, "myt"); !errors.Is(err, record.ErrInvalidJSON) {
			t.Errorf("Decode(%q) err = %v", bad, err)
		}
	}
}

func TestFromHandler(t *testing.T) {
	in := record.Input{ID: "x", Device: "d", Topic: "myt/d/s", TS: time.Unix(10, 0).UTC()}
	rs, err := record.FromHandler(in, []any{
		map[string]any{"a": json.Number("1")},
		nil,
		map[string]any{"a": json.Number("2"), "ts": "2024-01-01T00:00:00Z", "device": "other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].ID != "x" || rs[1].ID != "x#2" || rs[1].Device != "other" || rs[1].TS.Year() != 2024 {
		t.Errorf("fan out: %+v", rs)
	}
	if _, ok := rs[1].Fields["ts"]; ok {
		t.Error("ts kept in fields")
	}
	if rs, err := record.FromHandler(in, nil); err != nil || len(rs) != 0 {
		t.Errorf("None: %v %v", rs, err)
	}
	if _, err := record.FromHandler(in, json.Number("3")); err == nil {
		t.Error("number result accepted")
	}
}

func TestCoerce(t *testing.T) {
	tests := []struct {
		v    any
		typ  string
		want any
		err  bool
	}{
		{json.Number("1.5"), "float", 1.5, false},
		{json.Number("2"), "int", int64(2), false},
		{json.Number("2.0"), "int", int64(2), false},
		{json.Number("2.5"), "int", nil, true},
		{"abc", "float", nil, true},
		{true, "bool", true, false},
		{json.Number("7"), "string", "7", false},
		{nil, "int", nil, false},
		{map[string]any{"a": json.Number("1")}, "string", `{"a":1}`, false},
		{map[string]any{}, "float", nil, true},
	}
	for _, tt := range tests {
		got, err := record.Coerce(tt.v, tt.typ)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Coerce(%v, %s) = %v, %v", tt.v, tt.typ, got, err)
		}
	}
}

// Passthrough stores the payload minus the key its time came from: the
// first time key present, and only when it parsed.
func TestPassthroughFields(t *testing.T) {
	for _, tc := range []struct {
		body string
		want map[string]any
	}{
		{`{"a":1,"time":"2024-05-06T07:08:09Z","timestamp":5}`, map[string]any{"a": json.Number("1"), "timestamp": json.Number("5")}},
		{`{"a":1,"ts":"yesterday","time":5}`, map[string]any{"a": json.Number("1"), "ts": "yesterday", "time": json.Number("5")}},
		{`{"a":{"b":[1,"x"]}}`, map[string]any{"a": map[string]any{"b": []any{json.Number("1"), "x"}}}},
		{`[1,2]`, map[string]any{"value": []any{json.Number("1"), json.Number("2")}}},
		{`"s"`, map[string]any{"value": "s"}},
	} {
		in, err := record.Decode(record.Message{RoutingKey: "myt.d.s", Body: []byte(tc.body), Received: time.Now(), Redelivered: true}, "myt")
		if err != nil {
			t.Fatal(err)
		}
		r := record.Passthrough(in)
		if diff := cmp.Diff(tc.want, r.Fields); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", tc.body, diff)
		}
		if r.ID != in.ID || r.Device != "d" || r.Topic != "myt/d/s" || !r.TS.Equal(in.TS) || !r.Redelivered {
			t.Errorf("%s: record %+v from %+v", tc.body, r, in)
		}
	}
}

func BenchmarkDecodePassthrough(b *testing.B) {
	m := record.Message{RoutingKey: "myt.dev-1.env", Body: []byte(`{"ts":1714979289123,"temp":21.5,"hum":40,"ok":true,"site":"kitchen","v":[1,2]}`), Received: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		in, err := record.Decode(m, "myt")
		if err != nil {
			b.Fatal(err)
		}
		record.Passthrough(in)
	}
}
