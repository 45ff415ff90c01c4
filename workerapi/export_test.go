package workerapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/worker/sink"
	"github.com/myt-iot/myt/workerapi"
)

// fleet is the principal's running platforms, each with a worker API
// served here: the dialer sends each platform's worker port to its own.
type fleet struct {
	myt.PlatformService
	ps      map[int64]*myt.Platform
	workers map[int64]string // platform id -> the worker API's address
}

func (f *fleet) FindPlatformByID(_ context.Context, id int64) (*myt.Platform, error) {
	if p, ok := f.ps[id]; ok {
		return p, nil
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "Platform not found.")
}

func (f *fleet) DialPlatform(ctx context.Context, p *myt.Platform) (workerapi.DialFunc, func(), error) {
	addr := f.workers[p.ID]
	return func(ctx context.Context, network, a string) (net.Conn, error) {
		if a != net.JoinHostPort("127.0.0.1", fmt.Sprint(render.WorkerHostPort)) {
			return nil, fmt.Errorf("dial %s: not the worker port", a)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}, func() {}, nil
}

func (f *fleet) add(t *testing.T, id int64, name, kind string, h http.Handler) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	d := myt.NewDesign()
	d.Spec.Database.Kind = kind
	f.ps[id] = &myt.Platform{ID: id, Name: name, Status: myt.StatusRunning, Design: d}
	f.workers[id] = srv.Listener.Addr().String()
}

func newFleet() *fleet {
	return &fleet{ps: map[int64]*myt.Platform{}, workers: map[int64]string{}}
}

// realWorker is a worker's HTTP API on a real database of kind (its
// sink connected; no broker: imports and exports need none).
func realWorker(t *testing.T, env *testenv.Env, kind string) http.Handler {
	t.Helper()
	var dsn string
	switch kind {
	case "postgres":
		dsn = env.Postgres(t).DSN
	case "mysql":
		dsn = env.MariaDB(t).DSN
	case "mongodb":
		dsn = env.MongoDB(t).URI + "myt"
	case "influxdb":
		i := env.InfluxDB(t)
		dsn = i.URL + "/?db=" + i.Database
	}
	cfg := worker.DefaultConfig()
	cfg.Database.Kind = kind
	cfg.Database.Fields = map[string]string{"temperature": "float", "n": "int"}
	s, err := worker.NewSink(kind, sink.Options{DSN: dsn, Table: "measurements", Fields: cfg.Database.Fields})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		if err = s.Connect(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("connect %s: %v", kind, err)
		}
		time.Sleep(time.Second)
	}
	t.Cleanup(func() { s.Close() })
	return worker.New(cfg, s, slog.New(slog.DiscardHandler)).HTTPHandler("tok-" + kind)
}

// tokens hands each platform its worker's token.
type tokens map[int64]string

func (s tokens) Get(_ context.Context, id int64, name string) ([]byte, error) {
	if v, ok := s[id]; ok && name == render.SecretWorkerToken {
		return []byte(v + "\n"), nil
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "no %s", name)
}

// records reads an NDJSON export and keys it by id; a repeated id fails.
func readRecords(t *testing.T, r io.Reader) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		id := fmt.Sprint(rec["id"])
		if _, dup := out[id]; dup {
			t.Errorf("record %s exported twice", id)
		}
		out[id] = rec
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read the export: %v", err)
	}
	return out
}

func export(t *testing.T, svc *workerapi.Service, id int64, q myt.ExportQuery) map[string]map[string]any {
	t.Helper()
	ex, err := svc.Export(context.Background(), id, q)
	if err != nil {
		t.Fatalf("export of platform %d: %v", id, err)
	}
	defer ex.Body.Close()
	return readRecords(t, ex.Body)
}

// same says how a and b differ as records (time compared as instants,
// numbers as numbers), or "".
func same(a, b map[string]any) string {
	for _, k := range []string{"id", "device", "topic"} {
		if a[k] != b[k] {
			return fmt.Sprintf("%s %v != %v", k, a[k], b[k])
		}
	}
	ta, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(a["ts"]))
	tb, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(b["ts"]))
	if !ta.Equal(tb) || ta.IsZero() {
		return fmt.Sprintf("ts %v != %v", a["ts"], b["ts"])
	}
	fa, _ := a["fields"].(map[string]any)
	fb, _ := b["fields"].(map[string]any)
	for _, k := range []string{"temperature", "n"} {
		if fmt.Sprint(fa[k]) != fmt.Sprint(fb[k]) || fa[k] == nil {
			return fmt.Sprintf("fields.%s %v != %v", k, fa[k], fb[k])
		}
	}
	return ""
}

// TestMoveAcrossKinds moves records between platforms of different
// database kinds through MyT's service, worker to worker on real
// databases (MySQL to InfluxDB, as in the issue, and PostgreSQL to
// MongoDB): every record arrives once with its id, time and fields; a
// second move adds none; a time range and a device select what moves.
func TestMoveAcrossKinds(t *testing.T) {
	env := testenv.Require(t)
	for _, pair := range [][2]string{{"mysql", "influxdb"}, {"postgres", "mongodb"}} {
		t.Run(pair[0]+"-to-"+pair[1], func(t *testing.T) {
			f := newFleet()
			f.add(t, 1, "src", pair[0], realWorker(t, env, pair[0]))
			f.add(t, 2, "dst", pair[1], realWorker(t, env, pair[1]))
			f.add(t, 3, "part", pair[1], realWorker(t, env, pair[1]))
			svc := &workerapi.Service{Platforms: f, Secrets: tokens{1: "tok-" + pair[0], 2: "tok-" + pair[1], 3: "tok-" + pair[1]}, Dialer: f}

			// 3,000 records on two devices, a second apart, written
			// through the source worker's import.
			const n = 3000
			t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			var body bytes.Buffer
			for i := range n {
				dev := []string{"kitchen", "garage"}[i%2]
				fmt.Fprintf(&body, `{"id":"r-%d","device":%q,"topic":"myt/%s/env","ts":%q,"fields":{"temperature":%d.25,"n":%d}}`+"\n",
					i, dev, dev, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), i, i)
			}
			req, _ := http.NewRequest("POST", "http://"+f.workers[1]+"/v1/import", &body)
			req.Header.Set("Authorization", "Bearer tok-"+pair[0])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			ans, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(ans), fmt.Sprintf(`"imported":%d`, n)) {
				t.Fatalf("seed the source: %d %s", resp.StatusCode, ans)
			}
			src := export(t, svc, 1, myt.ExportQuery{})
			if len(src) != n {
				t.Fatalf("the source exports %d records, want %d", len(src), n)
			}

			for round := 1; round <= 2; round++ {
				start := time.Now()
				res, err := svc.Move(context.Background(), 1, 2, myt.ExportQuery{})
				if err != nil {
					t.Fatalf("move %d: %v", round, err)
				}
				t.Logf("move %d: %+v in %s", round, res, time.Since(start).Round(time.Millisecond))
				if res.Exported != n || res.Imported != n || res.Rejected != 0 || res.From != "src" || res.To != "dst" {
					t.Errorf("move %d: %+v, want %d read and imported", round, res, n)
				}
				dst := export(t, svc, 2, myt.ExportQuery{})
				if len(dst) != n {
					t.Errorf("after move %d the destination has %d records, want %d (each once)", round, len(dst), n)
				}
				bad := 0
				for id, r := range src {
					d, ok := dst[id]
					if !ok {
						t.Errorf("record %s was not moved", id)
					} else if diff := same(r, d); diff != "" {
						t.Errorf("record %s moved as: %s", id, diff)
					} else {
						continue
					}
					if bad++; bad == 5 {
						t.Fatal("...")
					}
				}
			}

			// A range and a device select what moves: from 00:10:00
			// (inclusive) to 00:20:00 (exclusive), kitchen only.
			q := myt.ExportQuery{From: t0.Add(10 * time.Minute), To: t0.Add(20 * time.Minute), Device: "kitchen"}
			res, err := svc.Move(context.Background(), 1, 3, q)
			if err != nil || res.Exported != 300 || res.Imported != 300 {
				t.Errorf("move of a range: %+v %v, want 300", res, err)
			}
			part := export(t, svc, 3, myt.ExportQuery{})
			if len(part) != 300 || part["r-600"] == nil || part["r-601"] != nil || part["r-1200"] != nil || part["r-1198"] == nil {
				t.Errorf("the range moved %d records (r-600 %v, r-1198 %v)", len(part), part["r-600"] != nil, part["r-1198"] != nil)
			}
		})
	}
}

// cutWorker is a worker whose export sends rows, then dies mid-stream
// as the worker does when its database fails (no last chunk).
func cutWorker(rows int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/import" {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"imported":0,"rejected":[]}`)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := range rows {
			fmt.Fprintf(w, `{"id":"r-%d","device":"d","topic":"myt/d","ts":"2026-01-01T00:00:00Z","fields":{}}`+"\n", i)
		}
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
}

// TestExportCutShort: an export the worker breaks off is an error to
// whoever reads it through MyT (never a clean end), and a move that
// reads it fails saying so.
func TestExportCutShort(t *testing.T) {
	f := newFleet()
	f.add(t, 1, "src", "mysql", cutWorker(5000))
	f.add(t, 2, "dst", "influxdb", cutWorker(0))
	svc := &workerapi.Service{Platforms: f, Secrets: tokens{1: "a", 2: "b"}, Dialer: f}
	ex, err := svc.Export(context.Background(), 1, myt.ExportQuery{Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	n, err := workerapi.Stream(&got, ex.Body)
	ex.Body.Close()
	if err == nil || n == 0 {
		t.Errorf("a cut export streamed %d bytes and ended with %v, want an error", n, err)
	}
	if ex.Filename(myt.ExportQuery{Format: "csv", From: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}) != "src-from-20260102T000000Z.csv" {
		t.Errorf("filename %q", ex.Filename(myt.ExportQuery{}))
	}
	res, err := svc.Move(context.Background(), 1, 2, myt.ExportQuery{})
	if err == nil || res == nil || !strings.Contains(err.Error(), "broke after") {
		t.Errorf("a move from a cut export: %+v %v, want an error saying it broke", res, err)
	}
	if _, err := svc.Move(context.Background(), 1, 1, myt.ExportQuery{}); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("a move into itself: %v, want EINVALID", err)
	}
	if _, err := svc.Export(context.Background(), 1, myt.ExportQuery{Format: "xml"}); myt.ErrorCode(err) != myt.EINVALID || myt.ErrorFields(err)[0].Field != "format" {
		t.Errorf("format xml: %v, want EINVALID on format", err)
	}
	f.ps[2].Status = myt.StatusDestroyed
	if _, err := svc.Move(context.Background(), 1, 2, myt.ExportQuery{}); myt.ErrorCode(err) != myt.EINVALID || !strings.Contains(err.Error(), "destroyed") {
		t.Errorf("a move into a destroyed platform: %v, want EINVALID", err)
	}
}
