package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// failingSink exports rows records, then fails as a database that goes
// away mid-export does (rows 0: it exports them all).
type failingSink struct{ rows, fail int }

func (failingSink) Connect(context.Context) error                { return nil }
func (failingSink) Write(context.Context, []record.Record) error { return nil }
func (failingSink) Close() error                                 { return nil }
func (s failingSink) Export(ctx context.Context, q sink.Query, fn func(record.Record) error) error {
	for i := range s.rows {
		if s.fail > 0 && i == s.fail {
			return errors.New("connection reset by the database")
		}
		if err := fn(record.Record{ID: "r", Device: "d", Topic: "myt/d", TS: time.Unix(int64(i), 0), Fields: map[string]any{"v": 1.5}}); err != nil {
			return err
		}
	}
	return nil
}

// TestExportCutShortIsNotComplete: when the database fails in the middle
// of an export, the client sees a broken stream (an error reading the
// body), never an answer that ends as a complete one would; a complete
// export ends cleanly. For both formats.
func TestExportCutShortIsNotComplete(t *testing.T) {
	for _, format := range []string{"ndjson", "csv"} {
		for _, tc := range []struct {
			name       string
			sink       failingSink
			wantBroken bool
		}{
			{"complete", failingSink{rows: 5000}, false},
			{"cut-after-flushed-rows", failingSink{rows: 5000, fail: 2500}, true},
			{"cut-before-any-flush", failingSink{rows: 5000, fail: 10}, true},
		} {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				cfg := worker.DefaultConfig()
				w := worker.New(cfg, tc.sink, slog.New(slog.DiscardHandler))
				srv := httptest.NewServer(w.HTTPHandler("tok"))
				defer srv.Close()
				req, _ := http.NewRequest("GET", srv.URL+"/v1/export?format="+format, nil)
				req.Header.Set("Authorization", "Bearer tok")
				resp, err := http.DefaultClient.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = errors.New(resp.Status)
					}
				}
				lines := strings.Count(string(body), "\n")
				if broken := err != nil; broken != tc.wantBroken {
					t.Errorf("read %d lines, error %v; want broken %v", lines, err, tc.wantBroken)
				}
				if !tc.wantBroken && lines < 5000 {
					t.Errorf("a complete export has %d lines", lines)
				}
			})
		}
	}
}
