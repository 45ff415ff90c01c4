package httpapi

import (
	"net/http"
	"strconv"

	"github.com/myt-iot/myt"
)

// CodeRequest is the body of a publish: the new handler.py.
type CodeRequest struct {
	Code string `json:"code"`
}

func (s *Server) publishCode(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req CodeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	j, err := s.cfg.Code.PublishCode(r.Context(), id, req.Code)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10))
	return writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) listCodeVersions(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	vs, err := s.cfg.Code.FindCodeVersions(r.Context(), id)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []*myt.CodeVersion{}
	}
	return writeJSON(w, http.StatusOK, vs)
}

func codeVersion(r *http.Request) (int64, int, error) {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return 0, 0, err
	}
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		return 0, 0, myt.Errorf(myt.ENOTFOUND, "No code version %q.", r.PathValue("version"))
	}
	return id, v, nil
}

func (s *Server) getCodeVersion(w http.ResponseWriter, r *http.Request) error {
	id, v, err := codeVersion(r)
	if err != nil {
		return err
	}
	cv, err := s.cfg.Code.FindCodeVersion(r.Context(), id, v)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cv)
}

func (s *Server) rollbackCode(w http.ResponseWriter, r *http.Request) error {
	id, v, err := codeVersion(r)
	if err != nil {
		return err
	}
	j, err := s.cfg.Code.RollbackCode(r.Context(), id, v)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10))
	return writeJSON(w, http.StatusAccepted, j)
}
