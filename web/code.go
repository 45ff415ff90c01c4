package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/diff"
)

// The day-2 half of the code page: publish, the versions a platform ran,
// each version's diff, and rollback.

// codeVersionRow is a version with its change against the one before.
type codeVersionRow struct {
	*myt.CodeVersion
	Added, Deleted int
}

// handlerView fills the code page: whether Publish is offered, and the
// versions.
func (s *server) handlerView(r *http.Request, p *myt.Platform, code string) (*handlerView, error) {
	v := &handlerView{P: p, Handler: code}
	if s.cfg.Code == nil {
		return v, nil
	}
	vs, err := s.cfg.Code.FindCodeVersions(r.Context(), p.ID)
	if err != nil {
		return nil, err
	}
	for i, cv := range vs {
		prev := ""
		if i+1 < len(vs) {
			prev = vs[i+1].Code
		}
		add, del := diff.Stat(prev, cv.Code)
		v.Versions = append(v.Versions, &codeVersionRow{cv, add, del})
	}
	// Publish replaces a running handler; the publish says why when the
	// design has other changes waiting, or (a platform deployed before
	// versions were kept) it turns out to run none.
	running := p.Design.Spec.Processing.Handler != ""
	if len(vs) > 0 {
		running = vs[0].Code != ""
	}
	v.Publishable = p.Status == myt.StatusRunning && running
	v.Tryable = s.cfg.Workers != nil && p.Status == myt.StatusRunning
	return v, nil
}

type codeVersionView struct {
	P        *myt.Platform
	V        *myt.CodeVersion
	Prev     *myt.CodeVersion
	Hunks    []diff.Hunk
	Versions int
}

func (s *server) codeVersionPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	if s.cfg.Code == nil {
		return myt.Errorf(myt.ENOTFOUND, "Page not found.")
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil {
		return myt.Errorf(myt.ENOTFOUND, "No version %q.", r.PathValue("version"))
	}
	vs, err := s.cfg.Code.FindCodeVersions(r.Context(), p.ID)
	if err != nil {
		return err
	}
	v := &codeVersionView{P: p, Versions: len(vs)}
	for i, cv := range vs {
		if cv.Version == n {
			v.V = cv
			if i+1 < len(vs) {
				v.Prev = vs[i+1]
			}
		}
	}
	if v.V == nil {
		return myt.Errorf(myt.ENOTFOUND, "Platform %s has no handler version %d.", p.Name, n)
	}
	prev := ""
	if v.Prev != nil {
		prev = v.Prev.Code
	}
	v.Hunks = diff.Hunks(prev, v.V.Code, 3)
	s.render(w, r, http.StatusOK, "code_version", &page{Title: fmt.Sprintf("Handler v%d of %s", n, p.Name), Section: "platforms", Data: v})
	return nil
}

func (s *server) codeRollback(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	if s.cfg.Code == nil {
		return myt.Errorf(myt.ENOTFOUND, "Page not found.")
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil {
		return myt.Errorf(myt.ENOTFOUND, "No version %q.", r.PathValue("version"))
	}
	j, err := s.cfg.Code.RollbackCode(r.Context(), p.ID, n)
	if err != nil {
		return err
	}
	s.log.Info("handler rolled back from the web", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "version", n, "job", j.ID)
	http.Redirect(w, r, "/jobs/"+strconv.FormatInt(j.ID, 10)+"?started=1", http.StatusSeeOther)
	return nil
}
