package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/myt-iot/myt"
)

// maxLogWait bounds a long poll of a job's log.
const maxLogWait = 60 * time.Second

func (s *Server) startJob(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := s.cfg.Platforms.FindPlatformByID(r.Context(), id); err != nil {
		return err
	}
	var req myt.JobRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	j, err := s.cfg.Jobs.StartJob(r.Context(), id, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10))
	return writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	var f myt.JobFilter
	if v := r.URL.Query().Get("platform"); v != "" {
		id, err := myt.ParseID(v)
		if err != nil {
			return err
		}
		f.PlatformID = &id
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return &myt.Error{Code: myt.EINVALID, Message: "The query is not valid.", Fields: []myt.FieldError{{Field: "limit", Message: "must be 1-500"}}}
		}
		f.Limit = n
	}
	jobs, err := s.cfg.Jobs.FindJobs(r.Context(), f)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []*myt.Job{}
	}
	return writeJSON(w, http.StatusOK, jobs)
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	j, err := s.cfg.Jobs.FindJobByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

// Approval is the body of an approval.
type Approval struct {
	Confirm string `json:"confirm,omitempty"`
}

func (s *Server) approveJob(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var a Approval
	if r.ContentLength != 0 {
		if err := decode(r, &a); err != nil {
			return err
		}
	}
	j, err := s.cfg.Jobs.ApproveJob(r.Context(), id, a.Confirm)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	j, err := s.cfg.Jobs.CancelJob(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

// JobLog is a piece of a job's log: the chunks after the requested seq,
// and whether the job has finished (no chunk will follow).
type JobLog struct {
	Chunks []myt.LogChunk `json:"chunks"`
	Done   bool           `json:"done"`
}

// jobLog answers ?after=SEQ&wait=DURATION: with wait, it holds the
// request until a chunk after SEQ exists, the job ends, or wait passes
// (a long poll, for `myt platform logs -f`).
func (s *Server) jobLog(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return &myt.Error{Code: myt.EINVALID, Message: "The query is not valid.", Fields: []myt.FieldError{{Field: "after", Message: "must be a log sequence number"}}}
		}
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return &myt.Error{Code: myt.EINVALID, Message: "The query is not valid.", Fields: []myt.FieldError{{Field: "wait", Message: "must be a duration such as 30s"}}}
		}
		wait = min(wait, maxLogWait)
	}
	var changed <-chan struct{}
	if wait > 0 {
		ch, stop, err := s.cfg.Jobs.WatchJob(r.Context(), id)
		if err != nil {
			return err
		}
		defer stop()
		changed = ch
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		chunks, done, err := s.cfg.Jobs.JobLog(r.Context(), id, after)
		if err != nil {
			return err
		}
		if len(chunks) > 0 || done || wait == 0 {
			if chunks == nil {
				chunks = []myt.LogChunk{}
			}
			return writeJSON(w, http.StatusOK, JobLog{Chunks: chunks, Done: done})
		}
		select {
		case <-changed:
		case <-time.After(2 * time.Second): // a missed notification costs at most this
		case <-deadline.C:
			wait = 0
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
}

func (s *Server) platformCA(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	b, err := s.cfg.Connections.PlatformCA(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// RevealedSecret is a platform secret shown on request.
type RevealedSecret struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (s *Server) platformSecret(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	v, err := s.cfg.Connections.PlatformSecret(r.Context(), id, name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, RevealedSecret{Name: name, Value: v})
}
