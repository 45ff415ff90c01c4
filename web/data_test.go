package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/web"
)

// dataWorkers plays the platforms' workers for the Data page: an export
// of rows lines, broken after cutAt bytes when cutAt > 0; moves succeed.
type dataWorkers struct {
	myt.WorkerService
	rows, cutAt int
	got         myt.ExportQuery
	moved       [2]int64
}

type brokenAfter struct {
	r        io.Reader
	n, cutAt int
}

func (b *brokenAfter) Read(p []byte) (int, error) {
	if b.cutAt > 0 && b.n >= b.cutAt {
		return 0, errors.New("connection reset")
	}
	n, err := b.r.Read(p)
	b.n += n
	return n, err
}

func (d *dataWorkers) Export(_ context.Context, _ int64, q myt.ExportQuery) (*myt.Export, error) {
	d.got = q
	var b bytes.Buffer
	for i := range d.rows {
		fmt.Fprintf(&b, "r-%d,d,myt/d,2026-01-01T00:00:00Z,1.5,\n", i)
	}
	return &myt.Export{Platform: "home", Format: q.Format, ContentType: "text/csv; charset=utf-8", Body: io.NopCloser(&brokenAfter{r: &b, cutAt: d.cutAt})}, nil
}

func (d *dataWorkers) Move(_ context.Context, from, to int64, q myt.ExportQuery) (*myt.Move, error) {
	d.moved = [2]int64{from, to}
	return &myt.Move{From: "home", To: "lab", Exported: d.rows, Imported: d.rows}, nil
}

// TestDataPage: a running platform links its Data page; Download streams
// the export as an attachment, a bad time is shown beside its input, a
// download cut on the way fails in the browser (no clean end); Move
// copies into another running platform and says how many records.
func TestDataPage(t *testing.T) {
	e := newEnv(t, false)
	dw := &dataWorkers{rows: 20000}
	h, err := web.New(web.Config{Users: e.svc.Users, Sessions: e.svc.Sessions, Credentials: e.svc.Credentials, Platforms: e.svc.Platforms, Admin: e.svc.Admin,
		Jobs: e.runner, Connections: e.runner, Code: e.runner, Workers: dw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e.srv = srv
	c := e.setup()
	ids := map[string]int64{}
	for _, name := range []string{"home", "lab"} {
		c.get("/platforms/new")
		form := wizardForm(name)
		form.Set("provider", "local")
		form.Del("credentials")
		if r := c.post("/platforms/new", form); r.status != 303 {
			t.Fatalf("wizard: %d %s", r.status, r.body)
		}
		e.setStatus(name, myt.StatusRunning)
		ids[name] = e.platformID(e.ctxOf(t, "ada", adminPW), name)
	}
	home := "/platforms/" + itoa(ids["home"])
	if p := c.get(home); !strings.Contains(p.body, `href="`+home+`/data"`) {
		t.Errorf("the platform page does not link its Data page")
	}
	page := c.get(home + "/data")
	for _, want := range []string{`action="` + home + `/data/export"`, `name="format"`, `action="` + home + `/data/move"`, `<option value="` + itoa(ids["lab"]) + `"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("data page lacks %q", want)
		}
	}

	r := c.get(home + "/data/export?" + url.Values{"from": {"2026-01-01"}, "to": {"2026-01-31"}, "device": {"kitchen"}, "format": {"csv"}}.Encode())
	if r.status != 200 || strings.Count(r.body, "\n") != 20000 || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment; filename=home-kitchen-from-20260101T000000Z-to-20260201T000000Z.csv") {
		t.Errorf("download: %d, %d lines, %q", r.status, strings.Count(r.body, "\n"), r.header.Get("Content-Disposition"))
	}
	if dw.got.Device != "kitchen" || dw.got.Format != "csv" {
		t.Errorf("query reached the service as %+v", dw.got)
	}
	r = c.get(home + "/data/export?from=yesterday&format=csv")
	if r.status != 422 || !strings.Contains(r.body, `id="f-from-err"`) || !strings.Contains(r.body, "Nothing was exported") {
		t.Errorf("a bad from: %d", r.status)
	}

	dw.cutAt = 200 << 10
	req, _ := http.NewRequest("GET", srv.URL+home+"/data/export?format=csv", nil)
	resp, err := c.hc.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("a download cut after %d bytes ended cleanly", dw.cutAt)
	}

	c.get(home + "/data")
	r = c.post(home+"/data/move", url.Values{"destination": {itoa(ids["lab"])}, "move_from": {"2026-01-01"}})
	if r.status != 200 || !strings.Contains(r.body, "Moved home into lab: 20000 records read, 20000 imported, 0 rejected.") || dw.moved != [2]int64{ids["home"], ids["lab"]} {
		t.Errorf("move: %d %v", r.status, dw.moved)
	}
	r = c.post(home+"/data/move", url.Values{"destination": {itoa(ids["lab"])}, "move_to": {"soon"}})
	if r.status != 422 || !strings.Contains(r.body, `id="f-move_to-err"`) {
		t.Errorf("a move with a bad to: %d", r.status)
	}
}
