package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
)

// exportThroughMyT checks MyT's export route on a platform whose dev-1
// holds the lifecycle's 1,000 records (temperature i + 0.25), read as
// `myt data export` reads it: NDJSON and CSV carry exactly those records,
// each once, equal to the worker's own export and, for TimescaleDB, to
// the rows psql reads in the database; a time range selects by ts, from
// inclusive and to exclusive; an unknown device exports nothing.
func exportThroughMyT(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, project string) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	read := func(from, to, device, format string) []byte {
		t.Helper()
		var b bytes.Buffer
		if _, err := c.Export(ctx, p.ID, from, to, device, format, &b); err != nil {
			t.Fatalf("export %s %s..%s of %s: %v", format, from, to, device, err)
		}
		return b.Bytes()
	}
	byID := func(b []byte) map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]any{}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("export line %q: %v", line, err)
			}
			id := fmt.Sprint(r["id"])
			if out[id] != nil {
				t.Errorf("record %s exported twice", id)
			}
			out[id] = r
		}
		return out
	}
	ts := func(r map[string]any) time.Time {
		v, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["ts"]))
		return v
	}

	got := byID(read("", "", "dev-1", "ndjson"))
	temps := map[string]bool{}
	for _, r := range got {
		temps[fmt.Sprint(fields(r)["temperature"])] = true
		if r["device"] != "dev-1" {
			t.Errorf("record of device %v in dev-1's export", r["device"])
		}
	}
	if len(got) != 1000 || len(temps) != 1000 || !temps["0.25"] || !temps["999.25"] {
		t.Errorf("MyT's export of dev-1: %d records, %d distinct temperatures; want the 1,000 published", len(got), len(temps))
	}
	worker := map[string]map[string]any{}
	for _, r := range records(t, h, project, "dev-1") {
		worker[fmt.Sprint(r["id"])] = r
	}
	for id, r := range worker {
		g := got[id]
		if g == nil || !ts(g).Equal(ts(r)) || fmt.Sprint(fields(g)) != fmt.Sprint(fields(r)) || g["topic"] != r["topic"] {
			t.Errorf("record %s: MyT exports %v, the worker %v", id, g, r)
			break
		}
	}
	compared := "the worker's own export"
	if p.Design.Spec.Database.Kind == myt.DatabaseTimescaleDB {
		compared += " and the rows psql reads"
		// The database's own rows.
		out := h.docker(t, "exec", project+"-timescaledb-1", "psql", "-U", "myt", "-d", "myt", "-At", "-F", "|", "-c",
			`SELECT id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), temperature FROM measurements WHERE device = 'dev-1'`)
		rows := strings.Split(strings.TrimSpace(out), "\n")
		if len(rows) != len(got) {
			t.Errorf("the database has %d rows of dev-1, MyT exported %d", len(rows), len(got))
		}
		for _, row := range rows {
			f := strings.Split(row, "|")
			if len(f) != 3 {
				t.Fatalf("psql row %q", row)
			}
			dbTS, _ := time.Parse(time.RFC3339Nano, f[1])
			g := got[f[0]]
			if g == nil || !ts(g).Equal(dbTS) || fmt.Sprint(fields(g)["temperature"]) != f[2] {
				t.Errorf("database row %q, MyT exported %v", row, g)
				break
			}
		}
	}

	// CSV: a header, then the same records.
	rows, err := csv.NewReader(bytes.NewReader(read("", "", "dev-1", "csv"))).ReadAll()
	if err != nil {
		t.Fatalf("CSV export: %v", err)
	}
	if len(rows) != len(got)+1 || strings.Join(rows[0][:5], ",") != "id,device,topic,ts,temperature" {
		t.Fatalf("CSV export: %d rows, header %v", len(rows), rows[0])
	}
	for _, row := range rows[1:] {
		g := got[row[0]]
		if g == nil || row[1] != "dev-1" || fmt.Sprint(fields(g)["temperature"]) != row[4] {
			t.Errorf("CSV row %v, NDJSON %v", row, g)
			break
		}
	}

	// A range: from the 100th time (inclusive) to the first one after
	// the 200th's (exclusive); records can share a time.
	var times []time.Time
	for _, r := range got {
		times = append(times, ts(r))
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	from, to := times[100], times[len(times)-1].Add(time.Second)
	for _, x := range times[200:] {
		if x.After(from) {
			to = x
			break
		}
	}
	want := 0
	for _, x := range times {
		if !x.Before(from) && x.Before(to) {
			want++
		}
	}
	part := byID(read(from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), "dev-1", "ndjson"))
	if len(part) != want || want == 0 {
		t.Errorf("export from %s to %s: %d records, want %d", from, to, len(part), want)
	}
	for _, r := range part {
		if x := ts(r); x.Before(from) || !x.Before(to) {
			t.Errorf("record at %s exported for [%s, %s)", x, from, to)
		}
	}
	if b := read("", "", "nobody", "ndjson"); len(b) != 0 {
		t.Errorf("an unknown device exported %d bytes", len(b))
	}
	t.Logf("export through MyT: %d records of dev-1 as NDJSON and CSV, equal to %s; a range gave %d (%s)", len(got), compared, len(part), time.Since(start).Round(100*time.Millisecond))
}

// carried is dev-3's records of TestDeployLocal's TimescaleDB platform,
// exported through MyT as NDJSON (what a move streams) during its life,
// for its MongoDB platform to import: local platforms share fixed host
// ports, so the two never run at once and the move goes through a file.
var carried []byte

// carryOut exports dev-3's records (the code day's 640) through MyT.
func carryOut(t *testing.T, c *httpapi.Client, p *myt.Platform) {
	t.Helper()
	var b bytes.Buffer
	if _, err := c.Export(context.Background(), p.ID, "", "", "dev-3", "ndjson", &b); err != nil {
		t.Fatalf("export dev-3 to carry it: %v", err)
	}
	if n := strings.Count(b.String(), "\n"); n != 640 {
		t.Fatalf("dev-3 exported %d records, want 640", n)
	}
	carried = b.Bytes()
}

// importScript posts the NDJSON file argv[1] to the worker's /v1/import,
// from inside the worker container, and prints the answer.
const importScript = `import sys, urllib.request
tok = open('/run/secrets/worker_api_token').read().strip()
req = urllib.request.Request('http://127.0.0.1:8080/v1/import', data=open(sys.argv[1], 'rb').read(), method='POST',
    headers={'Authorization': 'Bearer ' + tok, 'Content-Type': 'application/x-ndjson'})
sys.stdout.write(urllib.request.urlopen(req, timeout=120).read().decode())`

// carryIn imports the carried records into p (another database kind)
// twice: they arrive once each, with their ids, times and fields.
func carryIn(t *testing.T, h platformHost, project string) {
	t.Helper()
	if carried == nil {
		t.Log("no records carried from the TimescaleDB platform (its subtest did not run): cross-kind import not checked")
		return
	}
	file := filepath.Join(t.TempDir(), "carried.ndjson")
	if err := os.WriteFile(file, carried, 0o644); err != nil {
		t.Fatal(err)
	}
	worker := project + "-worker-1"
	h.docker(t, "cp", file, worker+":/tmp/carried.ndjson")
	want := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(string(carried)), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprint(r["id"])] = r
	}
	for round := 1; round <= 2; round++ {
		out := h.docker(t, "exec", worker, "python3", "-c", importScript, "/tmp/carried.ndjson")
		var res struct {
			Imported int   `json:"imported"`
			Rejected []any `json:"rejected"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Imported != len(want) || len(res.Rejected) != 0 {
			t.Fatalf("import %d of the carried records: %s (%v)", round, out, err)
		}
		got := records(t, h, project, "dev-3")
		if len(got) != len(want) {
			t.Errorf("after import %d: %d records of dev-3, want %d (each once)", round, len(got), len(want))
		}
		for _, r := range got {
			w := want[fmt.Sprint(r["id"])]
			a, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["ts"]))
			b, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(w["ts"]))
			if w == nil || !a.Equal(b) || fmt.Sprint(fields(r)) != fmt.Sprint(fields(w)) || r["topic"] != w["topic"] {
				t.Errorf("import %d: record %v, carried %v", round, r, w)
				break
			}
		}
	}
	t.Logf("carried %d records from TimescaleDB to %s through MyT's export and the worker's import, twice: each once, equal", len(want), project)
}
