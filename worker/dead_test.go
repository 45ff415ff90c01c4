package worker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/worker/record"
)

// deadHandler raises on payloads with "boom" until it is fixed.
func deadHandler(fixed bool) string {
	if fixed {
		return "def process(msg):\n    return msg['payload']\n"
	}
	return `def process(msg):
    p = msg["payload"]
    if p.get("boom"):
        raise RuntimeError("boom in message %d" % p["count"])
    return p
`
}

// deadCount is the number of ready messages in queue, waiting up to a
// minute for it to become want.
func deadCount(t *testing.T, b broker, queue string, want int) int {
	t.Helper()
	conn, err := amqp.Dial(b.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		n = q.Messages
		if n == want || time.Now().After(deadline) {
			return n
		}
	}
}

// queueDepth is the number of ready messages in queue now.
func queueDepth(t *testing.T, b broker, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(b.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// rowsByID counts the rows of each id in a PostgreSQL table.
func rowsByID(t *testing.T, dsn, table string, ids []string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT id, count(*) FROM %q WHERE id = ANY($1) GROUP BY id`, table), ids)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func deadList(t *testing.T, url string) worker.DeadList {
	t.Helper()
	code, body := api(t, "GET", url, "test-token", nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	var l worker.DeadList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return l
}

func replay(t *testing.T, url string) (int, worker.ReplayResult, string) {
	t.Helper()
	code, body := api(t, "POST", url+"/v1/dead/replay", "test-token", nil)
	var r worker.ReplayResult
	json.Unmarshal(body, &r)
	return code, r, string(body)
}

// TestDeadLetters: messages the handler fails on land in the dead-letter
// queue; GET /v1/dead lists them with their reasons and leaves them there;
// after a handler fix, a replay (which first crashes between the broker's
// confirm and the ack, so that every message is replayed twice) stores
// each of them exactly once; what fails again is dead-lettered again;
// a second replay meanwhile is refused (409); purge empties the queue;
// the export token and no token are refused.
func TestDeadLetters(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	top := newTopology()
	cleanupQueues(t, b, top)
	cfg := writeConfig(t, b, db, top, typedFields, deadHandler(false), "")
	exportToken := filepath.Join(filepath.Dir(cfg), "export_token")
	if err := os.WriteFile(exportToken, []byte("read-only"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(cfg)
	raw = bytes.Replace(raw, []byte("  tokenFile: "), []byte("  exportTokenFile: "+exportToken+"\n  tokenFile: "), 1)
	if err := os.WriteFile(cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, cfg)
	srv := httptest.NewServer(w.HTTPHandler("test-token"))
	defer srv.Close()
	waitQueue(t, b, top.Queue)

	// 300 messages, every tenth raises in the handler (one of them with a
	// body over 4 KiB), and two are not JSON (one not even UTF-8).
	const n = 300
	long := strings.Repeat("é", 3000) // 6000 bytes
	body := func(s int) []byte {
		p := makePayload(s)
		if s%10 == 3 {
			p.Boom = true
		}
		if s == 13 {
			p.Extra = long
		}
		return jsonBodyOf(p)
	}
	wantDead := map[string]string{} // id -> reason
	var boomIDs []string
	idOf := func(s int, b []byte) string {
		return record.MessageID(record.Message{RoutingKey: top.Prefix + "." + device(s) + ".env", Body: b})
	}
	for s := range n {
		if s%10 == 3 {
			id := idOf(s, body(s))
			wantDead[id] = worker.ReasonHandlerError
			boomIDs = append(boomIDs, id)
		}
	}
	bad := map[int][]byte{1000: []byte(`{"count": 1000, "temp": `), 1001: {0xff, 0xfe, 0, 'x'}}
	for s, b := range bad {
		wantDead[idOf(s, b)] = worker.ReasonInvalidJSON
	}
	publishAMQP(t, b, top.Prefix, seqRange(0, n), body)
	publishAMQP(t, b, top.Prefix, []int{1000, 1001}, func(s int) []byte { return bad[s] })
	good := n - len(boomIDs)
	if rows, _ := waitCount(t, db.DSN, top.Table, good, time.Minute); rows != good {
		t.Fatalf("stored %d rows before the fix, want %d", rows, good)
	}
	if got := deadCount(t, b, top.Dead, len(wantDead)); got != len(wantDead) {
		t.Fatalf("dead-letter queue holds %d, want %d", got, len(wantDead))
	}

	// Auth: the API token only.
	for _, c := range []struct{ method, path string }{{"GET", "/v1/dead"}, {"POST", "/v1/dead/replay"}, {"DELETE", "/v1/dead"}} {
		for _, tok := range []string{"", "wrong", "read-only"} {
			if code, body := api(t, c.method, srv.URL+c.path, tok, nil); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d %s, want 401", c.method, c.path, tok, code, body)
			}
		}
	}
	for _, q := range []string{"0", "501", "x"} {
		if code, _ := api(t, "GET", srv.URL+"/v1/dead?limit="+q, "test-token", nil); code != http.StatusBadRequest {
			t.Errorf("GET /v1/dead?limit=%s: %d, want 400", q, code)
		}
	}

	// List: everything, twice (same order), then 5; the queue keeps them all.
	l := deadList(t, srv.URL+"/v1/dead?limit=500")
	again := deadList(t, srv.URL+"/v1/dead?limit=500")
	if l.Total != len(wantDead) || len(l.Items) != len(wantDead) {
		t.Fatalf("GET /v1/dead: total %d, %d items; want %d", l.Total, len(l.Items), len(wantDead))
	}
	for i := range l.Items {
		if again.Items[i].ID != l.Items[i].ID {
			t.Errorf("a second list has another order at %d: %s, was %s", i, again.Items[i].ID, l.Items[i].ID)
			break
		}
	}
	seen := map[string]bool{}
	for _, it := range l.Items {
		seen[it.ID] = true
		if wantDead[it.ID] != it.Reason {
			t.Errorf("dead letter %s: reason %q, want %q (%+v)", it.ID, it.Reason, wantDead[it.ID], it)
		}
		if it.Reason == worker.ReasonHandlerError && !strings.Contains(it.Detail, "RuntimeError: boom in message") {
			t.Errorf("dead letter %s: detail %q", it.ID, it.Detail)
		}
		if !strings.HasPrefix(it.RoutingKey, top.Prefix+".dev-") || it.Device != strings.Split(it.RoutingKey, ".")[1] {
			t.Errorf("dead letter %s: routing key %q, device %q", it.ID, it.RoutingKey, it.Device)
		}
		if it.DeadAt == nil || time.Since(*it.DeadAt) > 5*time.Minute || time.Since(*it.DeadAt) < 0 {
			t.Errorf("dead letter %s: deadAt %v", it.ID, it.DeadAt)
		}
		switch {
		case it.ID == idOf(13, body(13)):
			if !it.Truncated || it.Size != len(body(13)) || len(it.Body) > worker.DeadBodyMax || len(it.Body) < worker.DeadBodyMax-3 ||
				!strings.HasPrefix(string(body(13)), it.Body) || it.Encoding != "" {
				t.Errorf("long dead letter: truncated %v, size %d, body %d bytes, encoding %q", it.Truncated, it.Size, len(it.Body), it.Encoding)
			}
		case it.ID == idOf(1001, bad[1001]):
			if b, err := base64.StdEncoding.DecodeString(it.Body); it.Encoding != "base64" || err != nil || !bytes.Equal(b, bad[1001]) {
				t.Errorf("binary dead letter: encoding %q, body %q", it.Encoding, it.Body)
			}
		default:
			if it.Truncated || it.Encoding != "" || len(it.Body) != it.Size {
				t.Errorf("dead letter %s: body %q, size %d, truncated %v, encoding %q", it.ID, it.Body, it.Size, it.Truncated, it.Encoding)
			}
		}
	}
	if len(seen) != len(wantDead) {
		t.Errorf("listed %d distinct dead letters, want %d", len(seen), len(wantDead))
	}
	if l5 := deadList(t, srv.URL+"/v1/dead?limit=5"); l5.Total != len(wantDead) || len(l5.Items) != 5 {
		t.Errorf("GET /v1/dead?limit=5: total %d, %d items", l5.Total, len(l5.Items))
	}
	if got := deadCount(t, b, top.Dead, len(wantDead)); got != len(wantDead) {
		t.Errorf("after listing the dead-letter queue holds %d, want %d", got, len(wantDead))
	}

	// The fix.
	if code, body := api(t, "PUT", srv.URL+"/v1/handler", "test-token", strings.NewReader(deadHandler(true))); code != 200 {
		t.Fatalf("PUT /v1/handler: %d %s", code, body)
	}
	// A replay that crashes between confirm and ack: every message is in
	// the ingest queue and still in the dead-letter queue.
	worker.SetReplayHook(w, func() error { return errors.New("crash") })
	if code, r, body := replay(t, srv.URL); code != http.StatusServiceUnavailable || r.Replayed != 0 {
		t.Errorf("crashed replay: %d %s", code, body)
	}
	// The copies are processed: the raising ones stored, the two invalid
	// ones dead again (replays: 1).
	if rows, _ := waitCount(t, db.DSN, top.Table, n, time.Minute); rows != n {
		t.Errorf("after the crashed replay: %d rows, want %d", rows, n)
	}
	if got := deadCount(t, b, top.Dead, len(wantDead)+len(bad)); got != len(wantDead)+len(bad) {
		t.Fatalf("after the crashed replay the dead-letter queue holds %d, want %d", got, len(wantDead)+len(bad))
	}

	// The replay again, held after its first confirm: a second one is refused.
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	worker.SetReplayHook(w, func() error {
		once.Do(func() { close(started); <-release })
		return nil
	})
	type result struct {
		code int
		r    worker.ReplayResult
		body string
	}
	first := make(chan result, 1)
	go func() {
		code, r, body := replay(t, srv.URL)
		first <- result{code, r, body}
	}()
	<-started
	if code, _, body := replay(t, srv.URL); code != http.StatusConflict {
		t.Errorf("concurrent replay: %d %s, want 409", code, body)
	}
	close(release)
	res := <-first
	if res.code != 200 || res.r.Replayed != len(wantDead)+len(bad) {
		t.Errorf("replay: %d %s, want %d replayed", res.code, res.body, len(wantDead)+len(bad))
	}
	t.Logf("replay: %s", strings.TrimSpace(res.body))
	// Every message the handler raised on is stored exactly once, after
	// two replays of each; the invalid ones are dead again.
	if got := deadCount(t, b, top.Dead, 2*len(bad)); got != 2*len(bad) {
		t.Errorf("after the replay the dead-letter queue holds %d, want %d", got, 2*len(bad))
	}
	time.Sleep(500 * time.Millisecond) // a late duplicate would show
	byID := rowsByID(t, db.DSN, top.Table, boomIDs)
	for _, id := range boomIDs {
		if byID[id] != 1 {
			t.Errorf("replayed message %s stored %d times, want 1", id, byID[id])
		}
	}
	rows := readAll(t, reader(t, db, top.Table, typedFields))
	distinct, dups := checkRows(t, rows, top.Prefix, seqRange(0, n), true)
	t.Logf("published %d + %d invalid; dead-lettered %d; replayed twice each; stored %d rows, distinct %d, duplicates %d",
		n, len(bad), len(wantDead), len(rows), distinct, dups)
	if len(rows) != n || distinct != n || dups != 0 {
		t.Errorf("stored %d rows (%d distinct, %d duplicates), want %d", len(rows), distinct, dups, n)
	}
	left := deadList(t, srv.URL+"/v1/dead")
	replays := map[int]int{}
	for _, it := range left.Items {
		replays[it.Replays]++
		if wantDead[it.ID] != worker.ReasonInvalidJSON || !strings.HasPrefix(it.RoutingKey, top.Prefix+".") {
			t.Errorf("left dead letter %s: reason %q, routing key %q", it.ID, it.Reason, it.RoutingKey)
		}
	}
	if left.Total != 2*len(bad) || replays[1] != len(bad) || replays[2] != len(bad) {
		t.Errorf("left in the dead-letter queue: total %d, replays %v", left.Total, replays)
		for _, it := range left.Items {
			t.Logf("left: %s replays %d deadAt %v", it.ID, it.Replays, it.DeadAt)
		}
	}

	// Purge.
	code, purged := api(t, "DELETE", srv.URL+"/v1/dead", "test-token", nil)
	var p worker.PurgeResult
	if json.Unmarshal(purged, &p); code != 200 || p.Purged != 2*len(bad) {
		t.Errorf("purge: %d %s, want %d purged", code, purged, 2*len(bad))
	}
	if l := deadList(t, srv.URL+"/v1/dead"); l.Total != 0 || len(l.Items) != 0 {
		t.Errorf("after purge: %+v", l)
	}
	if code, r, body := replay(t, srv.URL); code != 200 || r.Replayed != 0 || r.Remaining != 0 {
		t.Errorf("replay of an empty queue: %d %s", code, body)
	}
	_, metrics := api(t, "GET", srv.URL+"/metrics", "", nil)
	for _, m := range []string{
		fmt.Sprintf("myt_worker_dead_replayed_total %d\n", len(wantDead)+len(bad)),
		fmt.Sprintf("myt_worker_dead_purged_total %d\n", 2*len(bad)),
	} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("metrics lack %q", strings.TrimSpace(m))
		}
	}
}

// TestDeadReplayKill: the worker binary is SIGKILLed in the middle of a
// replay of thousands of dead letters; after a restart and a second
// replay every message is stored exactly once.
func TestDeadReplayKill(t *testing.T) {
	b := rabbitFor(t)
	db := databaseFor(t, "postgres")
	n := envInt("MYT_DEAD_REPLAY_MESSAGES", 5000)
	top := newTopology()
	cleanupQueues(t, b, top)
	cfg := writeConfig(t, b, db, top, typedFields, deadHandler(false), "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	raw, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, bytes.Replace(raw, []byte(`listen: "127.0.0.1:0"`), []byte(`listen: "`+addr+`"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	p := startBinary(t, cfg)
	waitQueue(t, b, top.Queue)
	publishAMQP(t, b, top.Prefix, seqRange(0, n), func(s int) []byte {
		p := makePayload(s)
		p.Boom = true
		return jsonBodyOf(p)
	})
	if got := deadCount(t, b, top.Dead, n); got != n {
		t.Fatalf("dead-letter queue holds %d, want %d", got, n)
	}
	if code, body := api(t, "PUT", url+"/v1/handler", "test-token", strings.NewReader(deadHandler(true))); code != 200 {
		t.Fatalf("PUT /v1/handler: %d %s", code, body)
	}
	// The replay's HTTP request fails when the worker dies; that is expected.
	go func() {
		req, _ := http.NewRequest("POST", url+"/v1/dead/replay", nil)
		req.Header.Set("Authorization", "Bearer test-token")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadAtKill := n
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if deadAtKill = queueDepth(t, b, top.Dead); deadAtKill < n*3/4 {
			break
		}
	}
	p.kill()
	rowsAtKill, _ := pgCounts(t, db.DSN, top.Table)
	if deadAtKill == 0 || deadAtKill >= n {
		t.Fatalf("the kill came when %d of %d dead letters were left: not mid-replay", deadAtKill, n)
	}
	p = startBinary(t, cfg)
	waitQueue(t, b, top.Queue)
	// Messages the killed replay held come back to the dead-letter queue
	// (not always at once): replay until none are left, as an operator
	// would while "remaining" is not 0.
	replays := []string{}
	for i := 0; ; i++ {
		code, r, body := replay(t, url)
		if code == 200 {
			replays = append(replays, strings.TrimSpace(body))
			if r.Remaining == 0 && r.Replayed == 0 {
				break
			}
		}
		if i == 60 {
			t.Fatalf("replays after the restart: %v; last %d %s", replays, code, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("replays after the restart: %v", replays)
	rows, distinct := waitCount(t, db.DSN, top.Table, n, 2*time.Minute)
	time.Sleep(time.Second) // a late duplicate would show
	rows, distinct = pgCounts(t, db.DSN, top.Table)
	left := deadCount(t, b, top.Dead, 0)
	if left > 0 {
		l := deadList(t, url+"/v1/dead?limit=500")
		kinds := map[string]int{}
		for _, it := range l.Items {
			kinds[fmt.Sprintf("%s replays=%d", it.Reason, it.Replays)]++
		}
		t.Logf("left dead: %v", kinds)
	}
	p.term(t)
	t.Logf("%d dead letters; SIGKILL mid-replay with %d left in the dead-letter queue and %d rows stored; after a restart and a second replay: %d rows, %d distinct, %d left dead, lost %d, duplicates %d",
		n, deadAtKill, rowsAtKill, rows, distinct, left, n-distinct, rows-distinct)
	if rows != n || distinct != n || left != 0 {
		t.Errorf("stored %d rows (%d distinct), %d left dead; want %d, %d, 0", rows, distinct, left, n, n)
	}
}
