package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

// dataWorkers plays the platforms' workers: an export of rows lines,
// cut (a read error) after cutAt bytes when cutAt > 0.
type dataWorkers struct {
	myt.WorkerService
	rows, cutAt int
	got         myt.ExportQuery
	// slow spreads the export over this long, reading as the worker's
	// request does: until ctx ends.
	slow time.Duration
}

// ctxReader reads r in pieces of 64 KiB, each after a pause, until ctx
// ends (as a request to the worker does).
type ctxReader struct {
	ctx   context.Context
	r     io.Reader
	pause time.Duration
}

func (c *ctxReader) Read(p []byte) (int, error) {
	time.Sleep(c.pause)
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p[:min(len(p), 64<<10)])
}

type cutReader struct {
	r     io.Reader
	n     int
	cutAt int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.cutAt > 0 && c.n >= c.cutAt {
		return 0, errors.New("connection reset")
	}
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (d *dataWorkers) Export(ctx context.Context, id int64, q myt.ExportQuery) (*myt.Export, error) {
	d.got = q
	var b bytes.Buffer
	for i := range d.rows {
		fmt.Fprintf(&b, `{"id":"r-%d"}`+"\n", i)
	}
	var body io.Reader = &cutReader{r: &b, cutAt: d.cutAt}
	if d.slow > 0 {
		body = &ctxReader{ctx: ctx, r: body, pause: d.slow / time.Duration(b.Len()/(64<<10)+1)}
	}
	return &myt.Export{Platform: "home", Format: "ndjson", ContentType: "application/x-ndjson", Body: io.NopCloser(body)}, nil
}

func (d *dataWorkers) Move(ctx context.Context, from, to int64, q myt.ExportQuery) (*myt.Move, error) {
	return &myt.Move{From: "home", To: "lab", Exported: d.rows, Imported: d.rows}, nil
}

// TestExportRoute: the API streams a platform's export as an attachment;
// an export cut on the way reaches the client as an error, never as a
// complete answer; a bad range names the field.
func TestExportRoute(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := sqlite.NewServices(db)
	dw := &dataWorkers{rows: 50000}
	srv := httptest.NewUnstartedServer(httpapi.New(httpapi.Config{Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin, Workers: dw}))
	// As myt serve: a read timeout, which an export outlasts.
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	c := httpapi.NewClient(srv.URL, "")
	tok, err := c.Setup(ctx, "ada", "correct horse battery", "t")
	if err != nil {
		t.Fatal(err)
	}
	c.Token = tok.Token

	var out bytes.Buffer
	n, err := c.Export(ctx, 1, "2026-01-01", "2026-01-02", "kitchen", "ndjson", &out)
	if err != nil || strings.Count(out.String(), "\n") != 50000 || n != int64(out.Len()) {
		t.Errorf("export: %d bytes, %d lines, %v", n, strings.Count(out.String(), "\n"), err)
	}
	if dw.got.Device != "kitchen" || dw.got.From.Format("2006-01-02") != "2026-01-01" || dw.got.To.Format("2006-01-02") != "2026-01-03" {
		t.Errorf("query reached the service as %+v (a date as to is its whole day)", dw.got)
	}

	// An export that takes three times the server's read timeout.
	dw.slow = 1500 * time.Millisecond
	out.Reset()
	if n, err := c.Export(ctx, 1, "", "", "", "", &out); err != nil || strings.Count(out.String(), "\n") != 50000 {
		t.Errorf("an export longer than the read timeout: %d bytes, %v", n, err)
	}
	dw.slow = 0

	dw.cutAt = 300 << 10
	out.Reset()
	n, err = c.Export(ctx, 1, "", "", "", "", &out)
	if err == nil {
		t.Errorf("an export cut after %d bytes reached the client as complete (%d bytes)", dw.cutAt, n)
	}

	_, err = c.Export(ctx, 1, "last week", "", "", "", &out)
	if myt.ErrorCode(err) != myt.EINVALID || len(myt.ErrorFields(err)) != 1 || myt.ErrorFields(err)[0].Field != "from" {
		t.Errorf("a bad from: %v, want EINVALID on from", err)
	}
	_, err = c.Export(ctx, 1, "", "", "", "xml", &out)
	if myt.ErrorCode(err) != myt.EINVALID || myt.ErrorFields(err)[0].Field != "format" {
		t.Errorf("format xml: %v, want EINVALID on format", err)
	}

	res, err := c.Move(ctx, 1, httpapi.MoveRequest{Destination: 2, From: "2026-01-01"})
	if err != nil || res.Imported != 50000 || res.To != "lab" {
		t.Errorf("move: %+v %v", res, err)
	}
	if _, err := c.Move(ctx, 1, httpapi.MoveRequest{}); myt.ErrorCode(err) != myt.EINVALID || myt.ErrorFields(err)[0].Field != "destination" {
		t.Errorf("a move without destination: %v", err)
	}
}
