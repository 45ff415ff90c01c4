package worker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/myt-iot/myt/internal/atomicfile"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// MaxImportLine bounds one NDJSON line of /v1/import.
const MaxImportLine = 1 << 20

// HTTPHandler serves /healthz, /readyz, /metrics and, behind the bearer
// token, /v1/export, /v1/import, /v1/handler and /v1/dead (dead.go). An
// empty token disables the /v1 endpoints (403). The configuration's export
// token (http.exportTokenFile), when set, is accepted for GET /v1/export
// only.
func (w *Worker) HTTPHandler(token string) http.Handler {
	exportToken, err := w.cfg.ExportToken()
	if err != nil {
		w.log.Error("the export token cannot be read; only the API token is accepted", "err", err)
		exportToken = ""
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		if !w.running.Load() {
			http.Error(rw, "not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := w.Ready(ctx); err != nil {
			http.Error(rw, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.Metrics.Registry, promhttp.HandlerOpts{}))
	// auth admits the API token and, for reading, the export token.
	auth := func(h http.HandlerFunc, readOnly bool) http.HandlerFunc {
		want := sha256.Sum256([]byte(token))
		wantExport := sha256.Sum256([]byte(exportToken))
		return func(rw http.ResponseWriter, r *http.Request) {
			if token == "" {
				http.Error(rw, "the worker API is disabled: no http.tokenFile configured", http.StatusForbidden)
				return
			}
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			g := sha256.Sum256([]byte(got))
			admitted := subtle.ConstantTimeCompare(g[:], want[:]) == 1
			if readOnly && exportToken != "" {
				admitted = subtle.ConstantTimeCompare(g[:], wantExport[:]) == 1 || admitted
			}
			if !ok || !admitted {
				rw.Header().Set("WWW-Authenticate", `Bearer realm="myt-worker"`)
				http.Error(rw, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(rw, r)
		}
	}
	mux.HandleFunc("GET /v1/export", auth(w.serveExport, true))
	mux.HandleFunc("POST /v1/import", auth(w.serveImport, false))
	mux.HandleFunc("PUT /v1/handler", auth(w.serveHandler, false))
	mux.HandleFunc("POST /v1/handler/test", auth(w.serveHandlerTest, false))
	mux.HandleFunc("GET /v1/dead", auth(w.serveDeadList, false))
	mux.HandleFunc("POST /v1/dead/replay", auth(w.serveDeadReplay, false))
	mux.HandleFunc("DELETE /v1/dead", auth(w.serveDeadPurge, false))
	return mux
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return record.ParseTS(s)
}

func (w *Worker) serveExport(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := parseTime(q.Get("from"))
	if err != nil {
		http.Error(rw, "from: "+err.Error(), http.StatusBadRequest)
		return
	}
	to, err := parseTime(q.Get("to"))
	if err != nil {
		http.Error(rw, "to: "+err.Error(), http.StatusBadRequest)
		return
	}
	format := q.Get("format")
	if format == "" {
		format = "ndjson"
	}
	if format != "csv" && format != "ndjson" {
		http.Error(rw, "format: must be csv or ndjson", http.StatusBadRequest)
		return
	}
	ex, ok := w.sink.(sink.Exporter)
	if !ok {
		http.Error(rw, "this database kind cannot export", http.StatusNotImplemented)
		return
	}
	flusher, _ := rw.(http.Flusher)
	bw := bufio.NewWriterSize(rw, 64<<10)
	n := 0
	flush := func() {
		bw.Flush()
		if flusher != nil {
			flusher.Flush()
		}
	}
	var emit func(record.Record) error
	names := slices.Sorted(maps.Keys(w.cfg.Database.Fields))
	if format == "csv" {
		rw.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(bw)
		cw.Write(append(append([]string{"id", "device", "topic", "ts"}, names...), "fields"))
		row := make([]string, 0, len(names)+5)
		emit = func(rec record.Record) error {
			row = append(row[:0], rec.ID, rec.Device, rec.Topic, rec.TS.UTC().Format(time.RFC3339Nano))
			rest := make(map[string]any, len(rec.Fields))
			for k, v := range rec.Fields {
				rest[k] = v
			}
			for _, k := range names {
				row = append(row, csvValue(rest[k]))
				delete(rest, k)
			}
			if len(rest) > 0 {
				b, _ := json.Marshal(rest)
				row = append(row, string(b))
			} else {
				row = append(row, "")
			}
			return cw.Write(row)
		}
		defer cw.Flush()
	} else {
		rw.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(bw)
		emit = func(rec record.Record) error { return enc.Encode(rec) }
	}
	err = ex.Export(r.Context(), sink.Query{From: from, To: to, Device: q.Get("device")}, func(rec record.Record) error {
		if err := emit(rec); err != nil {
			return err
		}
		n++
		if n%1000 == 0 {
			flush()
		}
		return nil
	})
	if err != nil {
		w.log.Warn("export failed", "err", err, "rows", n)
		if n == 0 {
			http.Error(rw, "export failed", http.StatusInternalServerError)
			return
		}
		// Rows are on the wire: end the response without its end (no
		// last chunk), so the client sees an export cut short, never
		// one that looks complete.
		panic(http.ErrAbortHandler)
	}
	flush()
}

func csvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return string(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type importResult struct {
	Imported int           `json:"imported"`
	Rejected []importError `json:"rejected"`
	// Unlisted counts rejected lines past the first MaxImportRejections,
	// which are not listed: an import of garbage must not grow the
	// worker's memory with its size.
	Unlisted int `json:"unlisted,omitempty"`
}

// MaxImportRejections bounds the rejected lines an import lists.
const MaxImportRejections = 1000

// reject lists a rejected line, or counts it once the list is full.
func (res *importResult) reject(e importError) {
	if len(res.Rejected) >= MaxImportRejections {
		res.Unlisted++
		return
	}
	res.Rejected = append(res.Rejected, e)
}

type importError struct {
	Line  int    `json:"line"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
}

// serveImport writes NDJSON records ({id, device, topic, ts, fields}) in
// batches; ids make it idempotent. A record without id gets the hash of
// its line.
func (w *Worker) serveImport(rw http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), MaxImportLine)
	res := importResult{Rejected: []importError{}}
	var batch []record.Record
	lines := map[string]int{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, rejected, err := w.importBatch(r.Context(), batch)
		if err != nil {
			return err
		}
		res.Imported += n
		for id, msg := range rejected {
			res.reject(importError{Line: lines[id], ID: id, Error: msg})
		}
		batch = batch[:0]
		clear(lines)
		return nil
	}
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var in struct {
			ID     string         `json:"id"`
			Device string         `json:"device"`
			Topic  string         `json:"topic"`
			TS     any            `json:"ts"`
			Fields map[string]any `json:"fields"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			res.reject(importError{Line: line, Error: "invalid JSON: " + err.Error()})
			continue
		}
		ts, err := record.ParseTS(in.TS)
		if err != nil || in.Device == "" {
			msg := "ts: required, RFC 3339 or epoch"
			if err == nil {
				msg = "device: required"
			}
			res.reject(importError{Line: line, ID: in.ID, Error: msg})
			continue
		}
		if in.ID == "" {
			s := sha256.Sum256(b)
			in.ID = "imp:" + hex.EncodeToString(s[:16])
		} else {
			in.ID = record.CapID(in.ID) // as message ids: every sink can store it
		}
		if in.Topic == "" {
			in.Topic = w.cfg.TopicPrefix + "/" + in.Device
		}
		if in.Fields == nil {
			in.Fields = map[string]any{}
		}
		if _, dup := lines[in.ID]; dup {
			continue
		}
		lines[in.ID] = line
		batch = append(batch, record.Record{ID: in.ID, Device: in.Device, Topic: in.Topic, TS: ts.UTC(), Fields: in.Fields, Redelivered: true})
		if len(batch) >= w.cfg.Batch.Size {
			if err := flush(); err != nil {
				w.importFailed(rw, res, err)
				return
			}
		}
	}
	if err := sc.Err(); err != nil {
		res.reject(importError{Line: line + 1, Error: "read: " + err.Error()})
	}
	if err := flush(); err != nil {
		w.importFailed(rw, res, err)
		return
	}
	w.Metrics.Imported.Add(float64(res.Imported))
	sort.Slice(res.Rejected, func(i, j int) bool { return res.Rejected[i].Line < res.Rejected[j].Line })
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(res)
}

func (w *Worker) importFailed(rw http.ResponseWriter, res importResult, err error) {
	w.log.Warn("import failed", "err", err, "imported", res.Imported)
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(rw).Encode(struct {
		importResult
		Error string `json:"error"`
	}{res, "database write failed; the import can be repeated safely"})
}

// importBatch writes records, isolating rejected ones; a transient error
// is returned (the client retries: imports are idempotent).
func (w *Worker) importBatch(ctx context.Context, recs []record.Record) (int, map[string]string, error) {
	rejected := map[string]string{}
	var write func(recs []record.Record) (int, error)
	write = func(recs []record.Record) (int, error) {
		for len(recs) > 0 {
			w.sinkMu.Lock()
			err := w.sink.Write(ctx, recs)
			w.sinkMu.Unlock()
			var inv *record.InvalidError
			switch {
			case err == nil:
				return len(recs), nil
			case errors.As(err, &inv):
				rejected[inv.ID] = inv.Err.Error()
				out := recs[:0:0]
				for _, r := range recs {
					if r.ID != inv.ID {
						out = append(out, r)
					}
				}
				recs = out
			case errors.Is(err, sink.ErrRejected):
				if len(recs) == 1 {
					rejected[recs[0].ID] = err.Error()
					return 0, nil
				}
				h := len(recs) / 2
				a, err := write(recs[:h:h])
				if err != nil {
					return 0, err
				}
				b, err := write(recs[h:])
				return a + b, err
			default:
				return 0, err
			}
		}
		return 0, nil
	}
	n, err := write(recs)
	return n, rejected, err
}

// serveHandler replaces the handler code: the body is the new handler.py.
// It is loaded from a private file beside the current one first (so its
// sibling imports work); only when it imports cleanly does it replace the
// running handler and then, atomically, handler.path.
func (w *Worker) serveHandler(rw http.ResponseWriter, r *http.Request) {
	if w.cfg.Handler.Path == "" || w.Handler() == nil {
		http.Error(rw, "no handler configured (passthrough): set handler.path and restart", http.StatusConflict)
		return
	}
	code, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(rw, "read body", http.StatusBadRequest)
		return
	}
	path := w.cfg.Handler.Path
	next, remove, err := writeCandidate(path, code)
	if err != nil {
		http.Error(rw, "cannot write the handler file", http.StatusInternalServerError)
		w.log.Error("write handler", "err", err)
		return
	}
	w.swapMu.Lock()
	defer w.swapMu.Unlock()
	if err := w.swapHandler(r.Context(), next); err != nil {
		remove()
		http.Error(rw, "handler rejected: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	// The candidate is now the file restarts read, until handler.path
	// holds the same code.
	w.candidate = remove
	if err := atomicfile.Write(path, code, 0o644); err != nil {
		w.log.Warn("handler swapped but could not replace handler.path; it runs until the worker restarts; update the file too",
			"path", path, "err", err)
		fmt.Fprintln(rw, "handler swapped (not persisted: handler.path cannot be written)")
		return
	}
	w.Handler().SetPath(path)
	remove()
	w.candidate = nil
	fmt.Fprintln(rw, "handler swapped")
}

// writeCandidate writes code to a new private file beside path or, when
// that directory is read-only, in a new temporary directory. remove
// deletes what it made.
func writeCandidate(path string, code []byte) (name string, remove func(), err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".handler-next-*.py")
	if err != nil {
		dir, derr := os.MkdirTemp("", "myt-handler-swap-")
		if derr != nil {
			return "", nil, errors.Join(err, derr)
		}
		name = filepath.Join(dir, "handler.py")
		if werr := os.WriteFile(name, code, 0o600); werr != nil {
			os.RemoveAll(dir)
			return "", nil, errors.Join(err, werr)
		}
		return name, func() { os.RemoveAll(dir) }, nil
	}
	name = f.Name()
	_, err = f.Write(code)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", nil, err
	}
	return name, func() { os.Remove(name) }, nil
}
