package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/workerapi"
)

// A running platform's records: exported (streamed from its worker
// through MyT, never held whole) or moved into another platform.

// MoveRequest is the body of POST /api/v1/platforms/{id}/move: the
// platform the records go to, and which records (from, to: RFC 3339 or a
// date; device).
type MoveRequest struct {
	Destination int64  `json:"destination"`
	From        string `json:"from,omitempty"`
	To          string `json:"to,omitempty"`
	Device      string `json:"device,omitempty"`
}

func (s *Server) data() (myt.DataService, error) {
	if ds, ok := s.cfg.Workers.(myt.DataService); ok {
		return ds, nil
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "This server does not reach platforms' workers.")
}

// ExportQuery reads an export's query (from, to, device, format) as the
// API and the web UI take it; errors name the field.
func ExportQuery(v url.Values) (myt.ExportQuery, error) {
	from, to, err := myt.ParseExportRange(v.Get("from"), v.Get("to"), "from", "to")
	q := myt.ExportQuery{From: from, To: to, Device: v.Get("device"), Format: v.Get("format")}
	if q.Format != "" && q.Format != myt.FormatCSV && q.Format != myt.FormatNDJSON {
		fe := myt.FieldError{Field: "format", Message: "must be csv or ndjson"}
		if err == nil {
			err = &myt.Error{Code: myt.EINVALID, Message: "The export is not valid.", Fields: []myt.FieldError{fe}}
		} else {
			e := err.(*myt.Error)
			e.Fields = append(e.Fields, fe)
		}
	}
	return q, err
}

func (s *Server) exportData(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.data()
	if err != nil {
		return err
	}
	q, err := ExportQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ex, err := ds.Export(r.Context(), id, q)
	if err != nil {
		return err
	}
	defer ex.Body.Close()
	w.Header().Set("Content-Type", ex.ContentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": ex.Filename(q)}))
	w.WriteHeader(http.StatusOK)
	n, err := workerapi.Stream(w, ex.Body)
	if err != nil {
		s.log.Warn("export cut short", "platform", ex.Platform, "bytes", n, "err", err)
		// No last chunk: the client sees an incomplete answer.
		panic(http.ErrAbortHandler)
	}
	s.log.Info("exported", "platform", ex.Platform, "bytes", n, "user", myt.UserFromContext(r.Context()).Username)
	return nil
}

func (s *Server) moveData(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.data()
	if err != nil {
		return err
	}
	var req MoveRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Destination <= 0 {
		return &myt.Error{Code: myt.EINVALID, Message: "Say where the records go.", Fields: []myt.FieldError{{Field: "destination", Message: "required: the id of a running platform of yours"}}}
	}
	from, to, err := myt.ParseExportRange(req.From, req.To, "from", "to")
	if err != nil {
		return err
	}
	res, err := ds.Move(r.Context(), id, req.Destination, myt.ExportQuery{From: from, To: to, Device: req.Device})
	if err != nil {
		if res != nil && myt.ErrorCode(err) == myt.EINTERNAL {
			s.log.Warn("move cut short", "from", res.From, "to", res.To, "exported", res.Exported, "imported", res.Imported, "err", err)
			return myt.Errorf(myt.EINTERNAL, "The move from %s to %s stopped after %d records were read and %d imported: %v", res.From, res.To, res.Exported, res.Imported, err)
		}
		return err
	}
	s.log.Info("moved", "from", res.From, "to", res.To, "exported", res.Exported, "imported", res.Imported, "rejected", res.Rejected)
	return writeJSON(w, http.StatusOK, res)
}

// Export streams a platform's export into w as it arrives and returns the
// bytes written. An error means the export is incomplete (cut short on
// the way, or refused before its first byte: then a *myt.Error).
func (c *Client) Export(ctx context.Context, platformID int64, from, to, device, format string, w io.Writer) (int64, error) {
	v := url.Values{}
	for k, x := range map[string]string{"from": from, "to": to, "device": device, "format": format} {
		if x != "" {
			v.Set(k, x)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/platforms/%d/export?%s", c.BaseURL, platformID, v.Encode()), nil)
	if err != nil {
		return 0, fmt.Errorf("bad server URL %q: %w", c.BaseURL, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "myt-cli/"+myt.Version)
	// A long export outlasts the client's usual timeout: only ctx ends it.
	hc := *c.HTTP
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach MyT at %s: %w", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb errorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return 0, fmt.Errorf("GET %s: unexpected answer %s from %s", req.URL.Path, resp.Status, c.BaseURL)
		}
		return 0, &myt.Error{Code: eb.Error.Code, Message: eb.Error.Message, Fields: eb.Error.Fields}
	}
	n, err := io.CopyBuffer(w, resp.Body, make([]byte, 32<<10))
	if err != nil {
		return n, fmt.Errorf("the export stopped after %s bytes: %w", strconv.FormatInt(n, 10), err)
	}
	return n, nil
}

// Move moves a platform's records into another (req.Destination).
func (c *Client) Move(ctx context.Context, platformID int64, req MoveRequest) (*myt.Move, error) {
	var out myt.Move
	hc := *c
	h := *c.HTTP
	h.Timeout = 0 // a move lasts as long as the records take
	hc.HTTP = &h
	return &out, hc.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/move", platformID), req, "", &out)
}
