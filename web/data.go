package web

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/workerapi"
)

// A running platform's Data page: download its records (CSV or NDJSON,
// streamed from its worker through MyT) and move them into another of
// the user's running platforms.

type dataView struct {
	P *myt.Platform
	// The export form's values and problems.
	From, To, Device, Format string
	Errs                     *formErrors
	// The move form: the user's other running platforms, its values,
	// problems and outcome.
	Destinations                    []Option
	Dest, MoveFrom, MoveTo, MoveDev string
	MoveErrs                        *formErrors
	Moved                           *myt.Move
	Running, Reachable              bool
}

func (s *server) data() (myt.DataService, bool) {
	ds, ok := s.cfg.Workers.(myt.DataService)
	return ds, ok
}

func (s *server) dataView(r *http.Request, p *myt.Platform) (*dataView, error) {
	_, ok := s.data()
	v := &dataView{P: p, Format: myt.FormatCSV, Running: p.Status == myt.StatusRunning, Reachable: ok, Errs: &formErrors{}, MoveErrs: &formErrors{}}
	ps, err := s.cfg.Platforms.FindPlatforms(r.Context(), myt.PlatformFilter{})
	if err != nil {
		return nil, err
	}
	for _, o := range ps {
		if o.ID != p.ID && o.Status == myt.StatusRunning {
			v.Destinations = append(v.Destinations, Option{Value: strconv.FormatInt(o.ID, 10), Label: fmt.Sprintf("%s (%s)", o.Name, o.Design.Spec.Database.Kind)})
		}
	}
	return v, nil
}

func (s *server) dataPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	v, err := s.dataView(r, p)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "data", &page{Title: "Data of " + p.Name, Section: "platforms", Data: v})
	return nil
}

// dataExport streams the export as a download. A query that is not valid
// shows the page with the problems; an export cut short ends the download
// without its last chunk, so the browser marks it failed.
func (s *server) dataExport(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	ds, ok := s.data()
	if !ok {
		return myt.Errorf(myt.ENOTFOUND, "Page not found.")
	}
	qv := r.URL.Query()
	from, to, err := myt.ParseExportRange(qv.Get("from"), qv.Get("to"), "from", "to")
	q := myt.ExportQuery{From: from, To: to, Device: qv.Get("device"), Format: qv.Get("format")}
	if err == nil && q.Format != myt.FormatCSV && q.Format != myt.FormatNDJSON {
		err = &myt.Error{Code: myt.EINVALID, Message: "The export is not valid.", Fields: []myt.FieldError{{Field: "format", Message: "must be CSV or NDJSON"}}}
	}
	var ex *myt.Export
	if err == nil {
		ex, err = ds.Export(r.Context(), p.ID, q)
	}
	if err != nil {
		if myt.ErrorCode(err) != myt.EINVALID && myt.ErrorCode(err) != myt.EINTERNAL {
			return err
		}
		v, verr := s.dataView(r, p)
		if verr != nil {
			return verr
		}
		v.From, v.To, v.Device, v.Format = qv.Get("from"), qv.Get("to"), qv.Get("device"), qv.Get("format")
		v.Errs = s.errorsFrom(r, err, func(path string) (string, string, bool) {
			switch path {
			case "from", "to", "device", "format":
				return path, exportLabels[path], true
			}
			return "", "", false
		})
		if myt.ErrorCode(err) == myt.EINTERNAL {
			v.Errs.Message = "MyT could not read the export: " + err.Error()
		}
		v.Errs.Message = "Nothing was exported. " + v.Errs.Message
		s.render(w, r, http.StatusUnprocessableEntity, "data", &page{Title: "Data of " + p.Name, Section: "platforms", Data: v})
		return nil
	}
	defer ex.Body.Close()
	w.Header().Set("Content-Type", ex.ContentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": ex.Filename(q)}))
	w.WriteHeader(http.StatusOK)
	n, err := workerapi.Stream(w, ex.Body)
	if err != nil {
		s.log.Warn("export cut short", "platform", p.Name, "bytes", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("exported from the web", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "bytes", n)
	return nil
}

var exportLabels = map[string]string{"from": "From", "to": "To", "device": "Device", "format": "Format"}

func (s *server) dataMove(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	ds, ok := s.data()
	if !ok {
		return myt.Errorf(myt.ENOTFOUND, "Page not found.")
	}
	v, err := s.dataView(r, p)
	if err != nil {
		return err
	}
	f := r.PostForm
	v.Dest, v.MoveFrom, v.MoveTo, v.MoveDev = f.Get("destination"), f.Get("move_from"), f.Get("move_to"), f.Get("move_device")
	from, to, err := myt.ParseExportRange(v.MoveFrom, v.MoveTo, "from", "to")
	dst, perr := strconv.ParseInt(v.Dest, 10, 64)
	if err == nil && (perr != nil || dst <= 0) {
		err = &myt.Error{Code: myt.EINVALID, Message: "Nothing was moved.", Fields: []myt.FieldError{{Field: "to", Message: "choose a running platform"}}}
	}
	var res *myt.Move
	if err == nil {
		res, err = ds.Move(r.Context(), p.ID, dst, myt.ExportQuery{From: from, To: to, Device: v.MoveDev})
	}
	if err != nil {
		if code := myt.ErrorCode(err); code != myt.EINVALID && code != myt.EINTERNAL && code != myt.ENOTFOUND {
			return err
		}
		var me *myt.Error
		if errors.As(err, &me) && me.Message == "The time range is not valid." {
			v.MoveErrs = s.errorsFrom(r, err, func(path string) (string, string, bool) {
				return "move_" + path, exportLabels[path], path == "from" || path == "to"
			})
		} else {
			v.MoveErrs = s.errorsFrom(r, err, func(path string) (string, string, bool) { return "destination", "Into", path == "to" })
		}
		if myt.ErrorCode(err) == myt.EINTERNAL {
			v.MoveErrs.Message = err.Error()
		}
		if res != nil && (res.Exported > 0 || res.Imported > 0) {
			v.MoveErrs.Message += fmt.Sprintf(" %d records were read and %d imported before it stopped; moving again completes it (records already there stay one).", res.Exported, res.Imported)
		}
		s.render(w, r, http.StatusUnprocessableEntity, "data", &page{Title: "Data of " + p.Name, Section: "platforms", Data: v})
		return nil
	}
	s.log.Info("moved from the web", "user", myt.UserFromContext(r.Context()).Username, "from", res.From, "to", res.To, "exported", res.Exported, "imported", res.Imported, "rejected", res.Rejected)
	v.Moved = res
	notice := fmt.Sprintf("Moved %s into %s: %d records read, %d imported, %d rejected.", res.From, res.To, res.Exported, res.Imported, res.Rejected)
	s.render(w, r, http.StatusOK, "data", &page{Title: "Data of " + p.Name, Section: "platforms", Notice: notice, Data: v})
	return nil
}

// FormatOptions are the export formats.
func (v *dataView) FormatOptions() []Option {
	return []Option{{Value: myt.FormatCSV, Label: "CSV"}, {Value: myt.FormatNDJSON, Label: "NDJSON"}}
}
