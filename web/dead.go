package web

import (
	"net/http"
	"strconv"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/workerapi"
)

// The dead letters of a running platform (its workers' myt.dead queue):
// listed with their reasons, replayed through the current handler, or
// purged. And trying code on samples, or on the dead letters, in the
// platform's worker.

type deadView struct {
	P    *myt.Platform
	Dead *myt.DeadLetters
	Err  string // why the list could not be read
}

func (s *server) deadPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	if s.cfg.Workers == nil {
		return myt.Errorf(myt.ENOTFOUND, "Page not found.")
	}
	v := &deadView{P: p}
	if v.Dead, err = s.cfg.Workers.DeadLetters(r.Context(), p.ID, 100); err != nil {
		switch myt.ErrorCode(err) {
		case myt.EINVALID, myt.ECONFLICT:
			v.Err = myt.ErrorMessage(err)
		case myt.EINTERNAL:
			// The platform's own host did not answer: say what failed
			// (an address, a refused connection; never a secret).
			s.log.Warn("dead letters: the worker API", "platform", p.Name, "err", err)
			v.Err = "MyT could not read the dead letters: " + err.Error()
		default:
			return err
		}
	}
	notice := ""
	switch {
	case r.URL.Query().Get("replayed") != "":
		notice = "Replayed " + r.URL.Query().Get("replayed") + " dead letters through the current handler; those that failed again are listed below."
	case r.URL.Query().Get("purged") != "":
		notice = "Deleted " + r.URL.Query().Get("purged") + " dead letters."
	}
	s.render(w, r, http.StatusOK, "dead", &page{Title: "Dead letters of " + p.Name, Section: "platforms", Notice: notice, Data: v})
	return nil
}

func (s *server) deadReplay(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	if s.cfg.Workers == nil {
		return myt.Errorf(myt.ENOTFOUND, "Page not found.")
	}
	res, err := s.cfg.Workers.ReplayDeadLetters(r.Context(), p.ID)
	if err != nil {
		return err
	}
	s.log.Info("dead letters replayed from the web", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "replayed", res.Replayed)
	http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"/dead?replayed="+strconv.Itoa(res.Replayed), http.StatusSeeOther)
	return nil
}

func (s *server) deadPurge(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	if s.cfg.Workers == nil {
		return myt.Errorf(myt.ENOTFOUND, "Page not found.")
	}
	n, err := s.cfg.Workers.PurgeDeadLetters(r.Context(), p.ID)
	if err != nil {
		return err
	}
	s.log.Info("dead letters purged from the web", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "purged", n)
	http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"/dead?purged="+strconv.Itoa(n), http.StatusSeeOther)
	return nil
}

// codeTry runs the editor's code on the samples (or, with
// action=dead-letters, fills the samples with the dead letters first) in
// the platform's worker and shows the code page with the results.
func (s *server) codeTry(w http.ResponseWriter, r *http.Request, p *myt.Platform, code string) error {
	v, err := s.handlerView(r, p, code)
	if err != nil {
		return err
	}
	v.Samples = r.PostForm.Get("samples")
	var fe *formErrors
	if r.PostForm.Get("action") == "dead-letters" {
		dl, err := s.cfg.Workers.DeadLetters(r.Context(), p.ID, 20)
		switch {
		case err != nil && myt.ErrorCode(err) != myt.EINVALID:
			return err
		case err != nil:
			fe = &formErrors{Message: "The code was not tried."}
			fe.add("samples", "Samples", myt.ErrorMessage(err))
		case len(dl.Items) == 0:
			fe = &formErrors{Message: "The code was not tried."}
			fe.add("samples", "Samples", "The platform has no dead letters.")
		default:
			v.Samples = workerapi.Samples(dl.Items)
		}
	}
	if fe == nil {
		v.Test, err = s.cfg.Workers.TestCode(r.Context(), p.ID, code, v.Samples)
		if err != nil {
			if myt.ErrorCode(err) != myt.EINVALID {
				return err
			}
			fe = s.errorsFrom(r, err, func(path string) (string, string, bool) {
				switch path {
				case "samples":
					return "samples", "Samples", true
				case "code":
					return "handler", "handler.py", true
				}
				return "", "", false
			})
			if len(fe.Fields) == 0 {
				// The worker's own words (Python's error) belong to the code.
				fe.add("handler", "handler.py", myt.ErrorMessage(err))
				fe.Message = "The code does not load."
			}
		}
	}
	status := http.StatusOK
	if fe != nil {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, "handler", &page{Title: "Processing code of " + p.Name, Section: "platforms", Data: v, Errs: fe})
	return nil
}
