package handler

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeResult(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    Result
		failure string // prefix
	}{
		{line: `{"r":{"a":1.50,"b":[true,null,"s"]}}`, want: Result{Value: map[string]any{"a": json.Number("1.50"), "b": []any{true, nil, "s"}}}},
		{line: `{"r":null}`, want: Result{}},
		{line: `{"e":"ValueError: x"}`, want: Result{Kind: Raised, Err: "ValueError: x"}},
		{line: `{"e":null,"r":7}`, want: Result{Value: json.Number("7")}},
		{line: `{"r":{"x":"\ud800"}}`, want: Result{Kind: BadResult, Err: "handler result: "}},
		{line: `{"e":"E: \ud800"}`, want: Result{Kind: Raised, Err: "E: \ufffd"}},
		{line: `{}`, want: Result{Kind: BadResult, Err: "handler result: "}},
		{line: `not json`, failure: "handler protocol error: "},
		{line: `[1]`, failure: "handler protocol error: "},
		{line: `{"e":5}`, failure: "handler protocol error: "},
	} {
		got, failure := decodeResult([]byte(tc.line + "\n"))
		if !strings.HasPrefix(failure.Err, tc.failure) || (tc.failure == "") != (failure.Kind == OK) ||
			(tc.failure != "" && failure.Kind != Crashed) {
			t.Errorf("%s: failure %+v, want Crashed %q...", tc.line, failure, tc.failure)
			continue
		}
		if strings.HasSuffix(tc.want.Err, ": ") && strings.HasPrefix(got.Err, tc.want.Err) {
			got.Err = tc.want.Err
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", tc.line, diff)
		}
	}
}
