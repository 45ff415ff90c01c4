package httpapi

import (
	"net/http"
	"strconv"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/workerapi"
)

// CodeTestRequest is the body of POST .../code/test.
type CodeTestRequest struct {
	Code string `json:"code"`
	// Samples are NDJSON lines; empty with DeadLetters > 0 tries the
	// oldest dead letters instead.
	Samples     string `json:"samples,omitempty"`
	DeadLetters int    `json:"deadLetters,omitempty"`
}

// PurgeResponse says how many dead letters a purge deleted.
type PurgeResponse struct {
	Purged int `json:"purged"`
}

func (s *Server) workers() (myt.WorkerService, error) {
	if s.cfg.Workers == nil {
		return nil, myt.Errorf(myt.ENOTFOUND, "This server does not reach platforms' workers.")
	}
	return s.cfg.Workers, nil
}

func (s *Server) testCode(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ws, err := s.workers()
	if err != nil {
		return err
	}
	var req CodeTestRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Samples == "" && req.DeadLetters > 0 {
		dl, err := ws.DeadLetters(r.Context(), id, min(req.DeadLetters, 200))
		if err != nil {
			return err
		}
		req.Samples = workerapi.Samples(dl.Items)
	}
	res, err := ws.TestCode(r.Context(), id, req.Code, req.Samples)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ws, err := s.workers()
	if err != nil {
		return err
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 500 {
			return &myt.Error{Code: myt.EINVALID, Message: "The query is not valid.", Fields: []myt.FieldError{{Field: "limit", Message: "must be 1-500"}}}
		}
	}
	dl, err := ws.DeadLetters(r.Context(), id, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, dl)
}

func (s *Server) replayDeadLetters(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ws, err := s.workers()
	if err != nil {
		return err
	}
	res, err := ws.ReplayDeadLetters(r.Context(), id)
	if err != nil {
		return err
	}
	s.log.Info("dead letters replayed", "platform", id, "user", myt.UserFromContext(r.Context()).Username, "replayed", res.Replayed)
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) purgeDeadLetters(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ws, err := s.workers()
	if err != nil {
		return err
	}
	n, err := ws.PurgeDeadLetters(r.Context(), id)
	if err != nil {
		return err
	}
	s.log.Info("dead letters purged", "platform", id, "user", myt.UserFromContext(r.Context()).Username, "purged", n)
	return writeJSON(w, http.StatusOK, PurgeResponse{Purged: n})
}
