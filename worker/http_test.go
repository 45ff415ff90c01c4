package worker_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/myt-iot/myt/worker/record"
)

func versionHandler(v int) string {
	return fmt.Sprintf("def process(msg):\n    p = dict(msg['payload'])\n    p['ver'] = %d\n    return p\n", v)
}

// versions checks every seq is stored once and that the handler switch is
// clean: every message before the swap point ran on the old code, every
// one after it on the new.
func versions(t *testing.T, rows []record.Record, n int) map[int]int {
	t.Helper()
	byVer := map[int]int{}
	maxOld, minNew := -1, n
	seen := map[int]bool{}
	for _, r := range rows {
		c, _ := record.Coerce(r.Fields["count"], "int")
		v, err := record.Coerce(r.Fields["ver"], "int")
		if err != nil || v == nil {
			t.Fatalf("row %s has no ver: %v", r.ID, r.Fields)
		}
		seq, ver := int(c.(int64)), int(v.(int64))
		if seen[seq] {
			t.Errorf("seq %d stored twice", seq)
		}
		seen[seq] = true
		byVer[ver]++
		if ver == 1 {
			maxOld = max(maxOld, seq)
		} else {
			minNew = min(minNew, seq)
		}
	}
	if len(seen) != n {
		t.Errorf("stored %d distinct messages, published %d", len(seen), n)
	}
	if maxOld > minNew {
		t.Errorf("old handler ran on seq %d after the new one ran on seq %d", maxOld, minNew)
	}
	return byVer
}

// publishDuringSwap publishes a steady stream (50 messages every 20 ms)
// from one second before swap() until three seconds after it, and returns
// how many messages it published.
func publishDuringSwap(t *testing.T, b broker, prefix string, swap func()) int {
	t.Helper()
	seq := 0
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			publishAMQP(t, b, prefix, seqRange(seq, seq+50), jsonBody)
			seq += 50
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	swap()
	time.Sleep(3 * time.Second)
	close(stop)
	<-done
	return seq
}

func api(t *testing.T, method, url, token string, body io.Reader) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestHTTPAPI: handler swap over HTTP while messages flow (none lost, none
// run twice), export as NDJSON and CSV with filters, idempotent import,
// and the bearer token.
func TestHTTPAPI(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	top := newTopology()
	cleanupQueues(t, b, top)
	w := startWorker(t, writeConfig(t, b, db, top, typedFields, versionHandler(1), ""))
	srv := httptest.NewServer(w.HTTPHandler("test-token"))
	defer srv.Close()
	waitQueue(t, b, top.Queue)

	if code, _ := api(t, "GET", srv.URL+"/healthz", "", nil); code != 200 {
		t.Errorf("healthz %d", code)
	}
	// The queue exists a moment before the consumer is up: poll readyz.
	for i := 0; ; i++ {
		code, body := api(t, "GET", srv.URL+"/readyz", "", nil)
		if code == 200 {
			break
		}
		if i == 100 {
			t.Errorf("readyz %d %s", code, body)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, tok := range []string{"", "wrong", "test-token-and-more"} {
		if code, _ := api(t, "GET", srv.URL+"/v1/export", tok, nil); code != http.StatusUnauthorized {
			t.Errorf("export with token %q: %d, want 401", tok, code)
		}
	}
	if code, body := api(t, "PUT", srv.URL+"/v1/handler", "test-token", strings.NewReader("def process(:\n")); code != http.StatusUnprocessableEntity {
		t.Errorf("broken handler accepted: %d %s", code, body)
	}

	n := publishDuringSwap(t, b, top.Prefix, func() {
		if code, body := api(t, "PUT", srv.URL+"/v1/handler", "test-token", strings.NewReader(versionHandler(2))); code != 200 {
			t.Errorf("swap: %d %s", code, body)
		}
	})
	ex := reader(t, db, top.Table, typedFields)
	rows := waitRows(t, ex, n, time.Minute)
	byVer := versions(t, rows, n)
	t.Logf("hot swap over HTTP while %d messages flowed: %v (old, new), distinct %d", n, byVer, len(rows))
	if byVer[2] == 0 {
		t.Error("new handler never ran")
	}

	// Export: NDJSON, all rows (the first 200 seqs, used below, are there).
	if n < 300 {
		t.Fatalf("only %d messages published", n)
	}
	code, body := api(t, "GET", srv.URL+"/v1/export?format=ndjson", "test-token", nil)
	if code != 200 {
		t.Fatalf("export %d %s", code, body)
	}
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	if len(lines) != n {
		t.Errorf("ndjson export: %d lines, want %d", len(lines), n)
	}
	// CSV with a device and time filter.
	from := time.UnixMilli(makePayload(100).TS).UTC().Format(time.RFC3339Nano)
	to := time.UnixMilli(makePayload(200).TS).UTC().Format(time.RFC3339Nano)
	code, body = api(t, "GET", srv.URL+"/v1/export?format=csv&device=dev-1&from="+from+"&to="+to, "test-token", nil)
	if code != 200 {
		t.Fatalf("csv export %d %s", code, body)
	}
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"id", "device", "topic", "ts", "count", "name", "ok", "temp", "fields"}; strings.Join(recs[0], ",") != strings.Join(want, ",") {
		t.Errorf("csv header %v", recs[0])
	}
	if len(recs)-1 != 20 { // seq 100..199 on dev-1: every 5th
		t.Errorf("csv filtered export: %d rows, want 20", len(recs)-1)
	}
	for _, r := range recs[1:] {
		if r[1] != "dev-1" {
			t.Errorf("csv row for device %s", r[1])
		}
	}

	// Import: the export again (idempotent), plus new and bad lines.
	var imp bytes.Buffer
	for _, l := range lines {
		imp.Write(l)
		imp.WriteByte('\n')
	}
	imp.WriteString(`{"id":"imported-1","device":"dev-9","ts":"2025-07-01T00:00:00Z","fields":{"count":100000,"temp":1.5,"ver":3}}` + "\n")
	imp.WriteString(`{"id":"imported-2","device":"dev-9","ts":1751328000,"fields":{"count":100001,"temp":"hot","ver":3}}` + "\n")
	imp.WriteString("not json\n")
	code, body = api(t, "POST", srv.URL+"/v1/import", "test-token", &imp)
	if code != 200 {
		t.Fatalf("import %d %s", code, body)
	}
	var res struct {
		Imported int
		Rejected []struct {
			Line  int
			ID    string
			Error string
		}
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("import: %s", bytes.TrimSpace(body))
	if res.Imported != n+1 || len(res.Rejected) != 2 {
		t.Errorf("import result %+v", res)
	}
	after := readAll(t, ex)
	if len(after) != n+1 {
		t.Errorf("after import: %d rows, want %d (re-imported rows must not duplicate)", len(after), n+1)
	}
	if code, body := api(t, "GET", srv.URL+"/metrics", "", nil); code != 200 || !bytes.Contains(body, []byte("myt_worker_stored_total")) {
		t.Errorf("metrics %d", code)
	}
}

// TestSIGHUPSwap: the worker binary reloads handler.path on SIGHUP while
// messages flow; each message is processed once, by the old or new code.
func TestSIGHUPSwap(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	top := newTopology()
	cleanupQueues(t, b, top)
	cfg := writeConfig(t, b, db, top, typedFields, versionHandler(1), "")
	p := startBinary(t, cfg)
	waitQueue(t, b, top.Queue)
	hp := filepath.Join(filepath.Dir(cfg), "handler.py")
	n := publishDuringSwap(t, b, top.Prefix, func() {
		if err := os.WriteFile(hp+".tmp", []byte(versionHandler(2)), 0o600); err != nil {
			t.Error(err)
		}
		os.Rename(hp+".tmp", hp)
		p.cmd.Process.Signal(syscall.SIGHUP)
	})
	ex := reader(t, db, top.Table, typedFields)
	rows := waitRows(t, ex, n, time.Minute)
	byVer := versions(t, rows, n)
	t.Logf("hot swap by SIGHUP while %d messages flowed: %v (old, new)", n, byVer)
	if byVer[2] == 0 {
		t.Error("new handler never ran")
	}
	p.term(t)
}
