package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// TestRetention: with database.retentionDays set, records older than that
// are deleted by the running worker and the rest are kept.
func TestRetention(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	top := newTopology()
	cleanupQueues(t, b, top)
	cfg := writeConfig(t, b, db, top, typedFields, "", "")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	table := "  table: " + top.Table + "\n"
	withRetention := strings.Replace(string(text), table, table+"  retentionDays: 2\n  retentionEvery: 1s\n", 1)
	if err := os.WriteFile(cfg, []byte(withRetention), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, cfg)
	waitQueue(t, b, top.Queue)

	// Seqs 0..99 are five days old, 100..199 an hour old.
	const n = 100
	now := time.Now()
	body := func(s int) []byte {
		p := makePayload(s)
		age := time.Hour
		if s < n {
			age = 5 * 24 * time.Hour
		}
		p.TS = now.Add(-age).UnixMilli() + int64(s)
		j, _ := json.Marshal(p)
		return j
	}
	publishAMQP(t, b, top.Prefix, seqRange(0, 2*n), body)

	srv := httptest.NewServer(w.HTTPHandler("test-token"))
	defer srv.Close()
	ex := reader(t, db, top.Table, typedFields)
	deadline := time.Now().Add(60 * time.Second)
	var rows []record.Record
	var metrics string
	for {
		rows = readAll(t, ex)
		_, body := api(t, "GET", srv.URL+"/metrics", "", nil)
		metrics = string(body)
		if strings.Contains(metrics, "\nmyt_worker_stored_total 200\n") && strings.Contains(metrics, "\nmyt_worker_expired_total 100\n") && len(rows) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d rows; metrics:\n%s", len(rows), grepMetrics(metrics, "myt_worker_stored_total", "myt_worker_expired_total"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[int64]bool{}
	for _, r := range rows {
		c, err := record.Coerce(r.Fields["count"], "int")
		if err != nil {
			t.Fatalf("row %s: count %v: %v", r.ID, r.Fields["count"], err)
		}
		s := c.(int64)
		want := time.UnixMilli(now.Add(-time.Hour).UnixMilli() + s)
		if s < n || s >= 2*n || seen[s] || !r.TS.Equal(want) {
			t.Errorf("kept row %s: count %d ts %s (duplicate %v); want one row per count %d..%d, ts %s", r.ID, s, r.TS, seen[s], n, 2*n-1, want)
		}
		seen[s] = true
	}
	t.Logf("published %d (%d older than 2 days); stored 200, expired 100, kept %d rows, all recent and distinct", 2*n, n, len(seen))

	// A worker that fails after the retention loop started (its handler
	// cannot start) returns its error instead of waiting for the loop.
	t.Run("early return", func(t *testing.T) {
		bad := strings.Replace(withRetention, "topicPrefix:", "handler: {path: "+writeHandlerFile(t)+", python: /nonexistent/python3}\ntopicPrefix:", 1)
		c, err := worker.ParseConfig([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		s, err := worker.NewSink(c.Database.Kind, sink.Options{DSN: db.DSN, Table: c.Database.Table, Fields: c.Database.Fields})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- worker.New(c, s, testLogger(t)).Run(context.Background()) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "handler") {
				t.Errorf("Run = %v, want the handler's error", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("Run did not return within 60s of a handler that cannot start")
		}
	})
}

func writeHandlerFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "handler.py")
	if err := os.WriteFile(p, []byte("def process(msg):\n    return msg['payload']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func grepMetrics(text string, names ...string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for _, name := range names {
			if strings.HasPrefix(line, name) {
				out = append(out, line)
			}
		}
	}
	return fmt.Sprint(out)
}
