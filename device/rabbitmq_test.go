package device_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/myt-iot/myt/device"
)

// TestActivityReadsEmptyStats: RabbitMQ writes a channel without
// statistics as "message_stats": [] (an empty Erlang list); that is 0
// messages, not an error that hides every device's activity.
func TestActivityReadsEmptyStats(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/connections":
			fmt.Fprint(w, `[{"name":"c1","user":"dev-a"},{"name":"c2","user":"myt-worker"}]`)
		case "/api/channels":
			fmt.Fprint(w, `[{"user":"myt-worker","message_stats":[]},{"user":"dev-a","message_stats":{"publish":7}},{"user":"dev-a"}]`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m := &device.Management{Client: srv.Client(), URL: srv.URL}
	got, err := m.Activity(context.Background())
	if err != nil || got["dev-a"] != 7 || len(got) != 2 {
		t.Errorf("Activity = %v, %v; want dev-a 7 and myt-worker 0", got, err)
	}
}
