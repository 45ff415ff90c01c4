package record_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/myt-iot/myt/worker/record"
)

func stdDecode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// DecodeJSON must give what encoding/json with UseNumber gives.
func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":1,"b":-2.50e3,"c":"x\"y\u00fc","d":[1,{"e":null}],"f":true,"g":false,"h":{}}`,
		`[]`, `"s"`, `12345678901234567890`, `null`, ` {"dup":1,"dup":2} `,
	} {
		got, err := record.DecodeJSON([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		want, _ := stdDecode([]byte(in))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-encoding/json +DecodeJSON):\n%s", in, diff)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`, `{"a":1} x`, `nul`, "\"\xff\""} {
		if _, err := record.DecodeJSON([]byte(bad)); err == nil {
			t.Errorf("DecodeJSON(%q) did not fail", bad)
		}
	}
}

var sample = []byte(`{"seq":12345,"temp":21.37,"hum":44,"ok":true,"ts":1735689600123,"name":"kitchen sensor"}`)

func BenchmarkDecodeJSON(b *testing.B) {
	for b.Loop() {
		record.DecodeJSON(sample)
	}
}

func BenchmarkEncodingJSON(b *testing.B) {
	for b.Loop() {
		stdDecode(sample)
	}
}

// DecodeFields reads a stored fields document: an object as DecodeJSON
// gives it, null as no fields, anything else an error.
func TestDecodeFields(t *testing.T) {
	got, err := record.DecodeFields([]byte(`{"a":1.50,"b":{"c":[2]}}`))
	want := map[string]any{"a": json.Number("1.50"), "b": map[string]any{"c": []any{json.Number("2")}}}
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Errorf("object: err %v, (-want +got)\n%s", err, diff)
	}
	if got, err := record.DecodeFields([]byte(`null`)); err != nil || got == nil || len(got) != 0 {
		t.Errorf("null: %v, %v; want an empty map", got, err)
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a":`, `{} {}`} {
		if got, err := record.DecodeFields([]byte(bad)); err == nil {
			t.Errorf("%s: %v, want an error", bad, got)
		}
	}
}
