package workerapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// Exports and moves: the worker's GET /v1/export streamed to the caller,
// or into another platform's POST /v1/import, never held whole in memory.

var _ myt.DataService = (*Service)(nil)

// worker is a running platform's first worker, ready to be called.
type worker struct {
	p     *myt.Platform
	token string
}

// running finds the principal's platform and its worker token, or says
// why its worker cannot be called.
func (s *Service) running(ctx context.Context, platformID int64) (*worker, error) {
	p, err := s.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	if p.Status != myt.StatusRunning {
		return nil, myt.Errorf(myt.EINVALID, "Platform %s is %s: its workers answer only while it runs.", p.Name, p.Status)
	}
	token, err := s.Secrets.Get(ctx, p.ID, render.SecretWorkerToken)
	if err != nil {
		if myt.ErrorCode(err) == myt.ENOTFOUND {
			return nil, myt.Errorf(myt.EINVALID, "Platform %s has no worker API token yet: deploy it.", p.Name)
		}
		return nil, err
	}
	return &worker{p: p, token: strings.TrimSpace(string(token))}, nil
}

// open sends one request to w and returns its 2xx response, whose body
// must be closed (that also releases the connection to the host). No
// overall timeout: a stream lasts as long as it needs, until ctx ends;
// the answer's headers must come within the service's timeout.
func (s *Service) open(ctx context.Context, w *worker, method, path, contentType string, body io.Reader) (*http.Response, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	dial, release, err := s.Dialer.DialPlatform(ctx, w.p)
	if err != nil {
		return nil, fmt.Errorf("reach platform %s: %w", w.p.Name, err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true, ResponseHeaderTimeout: timeout}}
	u := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(render.WorkerHostPort)) + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		release()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		release()
		return nil, fmt.Errorf("the worker of %s: %w", w.p.Name, err)
	}
	if resp.StatusCode/100 != 2 {
		defer release()
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		text := strings.TrimSpace(string(msg))
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			return nil, myt.Errorf(myt.EINVALID, "%s", text)
		case http.StatusConflict:
			return nil, myt.Errorf(myt.ECONFLICT, "%s", text)
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return nil, myt.Errorf(myt.EINVALID, "The worker of %s is older than this MyT: update the platform first.", w.p.Name)
		case http.StatusNotImplemented:
			return nil, myt.Errorf(myt.EINVALID, "The database of %s cannot export.", w.p.Name)
		}
		return nil, &statusError{name: w.p.Name, code: resp.StatusCode, text: text}
	}
	resp.Body = &releasing{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// statusError is a worker's answer other than 2xx that MyT has no word
// for; text is its body (the import's 503 is JSON with its counts).
type statusError struct {
	name string
	code int
	text string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("the worker of %s answered HTTP %d: %s", e.name, e.code, e.text)
}

// releasing is a response body whose Close also releases the host
// connection.
type releasing struct {
	io.ReadCloser
	release func()
}

func (r *releasing) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}

func exportPath(q myt.ExportQuery) (string, error) {
	switch q.Format {
	case "":
		q.Format = myt.FormatNDJSON
	case myt.FormatCSV, myt.FormatNDJSON:
	default:
		return "", &myt.Error{Code: myt.EINVALID, Message: "The export format is not valid.", Fields: []myt.FieldError{{Field: "format", Message: "must be csv or ndjson"}}}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return "", &myt.Error{Code: myt.EINVALID, Message: "The time range is not valid.", Fields: []myt.FieldError{{Field: "to", Message: "must be after from"}}}
	}
	v := url.Values{"format": {q.Format}}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.Device != "" {
		v.Set("device", q.Device)
	}
	return "/v1/export?" + v.Encode(), nil
}

// Export implements myt.DataService.
func (s *Service) Export(ctx context.Context, platformID int64, q myt.ExportQuery) (*myt.Export, error) {
	path, err := exportPath(q)
	if err != nil {
		return nil, err
	}
	w, err := s.running(ctx, platformID)
	if err != nil {
		return nil, err
	}
	resp, err := s.open(ctx, w, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, err
	}
	format := q.Format
	if format == "" {
		format = myt.FormatNDJSON
	}
	return &myt.Export{Platform: w.p.Name, Format: format, ContentType: resp.Header.Get("Content-Type"), Body: resp.Body}, nil
}

// counting counts the lines read through it and keeps the first error
// other than io.EOF.
type counting struct {
	r     io.Reader
	lines int
	err   error
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.lines += bytes.Count(p[:n], []byte{'\n'})
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// Move implements myt.DataService.
func (s *Service) Move(ctx context.Context, fromID, toID int64, q myt.ExportQuery) (*myt.Move, error) {
	if fromID == toID {
		return nil, &myt.Error{Code: myt.EINVALID, Message: "A platform's records are already there: choose another platform to move them to.", Fields: []myt.FieldError{{Field: "to", Message: "is the platform the records come from"}}}
	}
	q.Format = myt.FormatNDJSON
	path, err := exportPath(q)
	if err != nil {
		return nil, err
	}
	// Both must run before anything is read.
	dst, err := s.running(ctx, toID)
	if err != nil {
		return nil, err
	}
	src, err := s.running(ctx, fromID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := s.open(ctx, src, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	in := &counting{r: resp.Body}
	res := &myt.Move{From: src.p.Name, To: dst.p.Name}
	ans, err := s.open(ctx, dst, http.MethodPost, "/v1/import", "application/x-ndjson", in)
	res.Exported = in.lines
	if ans != nil {
		defer ans.Body.Close()
	}
	if in.err != nil {
		return res, fmt.Errorf("the export of %s broke after %d records (%v): what reached %s stays there; move again to complete it", src.p.Name, in.lines, in.err, dst.p.Name)
	}
	var out struct {
		Imported int `json:"imported"`
		Rejected []struct {
			Line  int    `json:"line"`
			ID    string `json:"id"`
			Error string `json:"error"`
		} `json:"rejected"`
		Unlisted int    `json:"unlisted"`
		Error    string `json:"error"`
	}
	var se *statusError
	switch {
	case errors.As(err, &se) && se.code == http.StatusServiceUnavailable:
		// The destination's database failed part way.
		json.Unmarshal([]byte(se.text), &out)
		res.Imported = out.Imported
		return res, fmt.Errorf("the database of %s failed after %d records were imported (%s): move again to complete it (records already there stay one)", dst.p.Name, out.Imported, out.Error)
	case err != nil:
		return res, err
	}
	if err := json.NewDecoder(io.LimitReader(ans.Body, 16<<20)).Decode(&out); err != nil {
		return res, fmt.Errorf("the import of %s answered: %w", dst.p.Name, err)
	}
	res.Imported = out.Imported
	res.Rejected = len(out.Rejected) + out.Unlisted
	for _, r := range out.Rejected {
		if len(res.Reasons) == 5 {
			break
		}
		res.Reasons = append(res.Reasons, fmt.Sprintf("record %s (line %d): %s", r.ID, r.Line, r.Error))
	}
	return res, nil
}

// Stream copies an export to w as it comes, through one fixed buffer,
// flushing each piece when w is an http.ResponseWriter, and returns the
// bytes written. An error means the export is incomplete.
func Stream(w io.Writer, body io.Reader) (int64, error) {
	var flush func() error
	if rw, ok := w.(http.ResponseWriter); ok {
		flush = http.NewResponseController(rw).Flush
	}
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, err := body.Read(buf)
		if m > 0 {
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
			if flush != nil {
				if werr := flush(); werr != nil {
					return n, werr
				}
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
