package myt_test

import (
	"net/http"
	"testing"

	"github.com/myt-iot/myt"
)

func TestHTTPStatus(t *testing.T) {
	want := map[string]int{
		myt.EINVALID:      http.StatusBadRequest,
		myt.ENOTFOUND:     http.StatusNotFound,
		myt.ECONFLICT:     http.StatusConflict,
		myt.EUNAUTHORIZED: http.StatusUnauthorized,
		myt.EFORBIDDEN:    http.StatusForbidden,
		myt.ETOOMANY:      http.StatusTooManyRequests,
		myt.ETOOLARGE:     http.StatusRequestEntityTooLarge,
		myt.EINTERNAL:     http.StatusInternalServerError,
		"":                http.StatusInternalServerError,
		"no-such-code":    http.StatusInternalServerError,
	}
	for code, st := range want {
		if got := myt.HTTPStatus(code); got != st {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, st)
		}
	}
	codes := myt.ErrorCodes()
	if len(codes) != len(want)-2 {
		t.Errorf("ErrorCodes() = %v: want the %d codes above", codes, len(want)-2)
	}
	for _, c := range codes {
		if _, ok := want[c]; !ok || c == "" {
			t.Errorf("ErrorCodes() lists %q, which this test does not know", c)
		}
	}
}
