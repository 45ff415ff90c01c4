package web

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/worker/handler"
)

type dashboardView struct {
	Platforms   []*myt.Platform
	Counts      map[string]int
	Credentials int
	Welcome     bool
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ps, err := s.cfg.Platforms.FindPlatforms(ctx, myt.PlatformFilter{})
	if err != nil {
		return err
	}
	cs, err := s.cfg.Credentials.FindCredentials(ctx, myt.CredentialFilter{})
	if err != nil {
		return err
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Updated.After(ps[j].Updated) })
	v := &dashboardView{Platforms: ps, Counts: map[string]int{}, Credentials: len(cs), Welcome: r.URL.Query().Get("welcome") == "1"}
	for _, p := range ps {
		v.Counts[p.Status]++
	}
	pg := &page{Title: "Platforms", Section: "platforms", Data: v}
	if r.URL.Query().Get("ok") == "deleted" {
		pg.Notice = "The platform was deleted."
	}
	s.render(w, r, http.StatusOK, "dashboard", pg)
	return nil
}

// platformFor loads the {id} platform of the principal (404 otherwise).
func (s *server) platformFor(r *http.Request) (*myt.Platform, error) {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return s.cfg.Platforms.FindPlatformByID(r.Context(), id)
}

type platformView struct {
	P     *myt.Platform
	YAML  string
	Ports []int
	// Fields are the declared typed fields, sorted by name.
	Fields         [][2]string
	HandlerLines   int
	DatabaseReason string
	// Credential is the saved credential the design names, nil when it is
	// missing (deleted, or never saved).
	Credential *myt.Credential
}

func (s *server) platformPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	y, err := design.MarshalYAML(p.Design)
	if err != nil {
		return fmt.Errorf("marshal design of platform %d: %w", p.ID, err)
	}
	v := &platformView{P: p, YAML: string(y), Ports: p.Design.Spec.Broker.Ports()}
	if name := p.Design.Spec.Target.Credentials; name != "" {
		kind := p.Design.Spec.Target.Provider
		cs, err := s.cfg.Credentials.FindCredentials(r.Context(), myt.CredentialFilter{Name: &name, Kind: &kind})
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			v.Credential = cs[0]
		}
	}
	for _, n := range sortedFieldNames(p.Design.Spec.Database.Fields) {
		v.Fields = append(v.Fields, [2]string{n, p.Design.Spec.Database.Fields[n]})
	}
	if h := p.Design.Spec.Processing.Handler; h != "" {
		v.HandlerLines = strings.Count(strings.TrimRight(h, "\n"), "\n") + 1
	}
	for _, rec := range recommendations {
		if rec.Kind == p.Design.Spec.Database.Kind {
			v.DatabaseReason = rec.Why
		}
	}
	pg := &page{Title: p.Name, Section: "platforms", Data: v}
	switch {
	case r.URL.Query().Get("created") == "1":
		pg.Notice = "The platform design was saved. Deploying it comes in a later release of MyT; for now you can review it and download its YAML."
	case r.URL.Query().Get("updated") == "1":
		pg.Notice = fmt.Sprintf("The design was updated to revision %d.", p.Revision)
	}
	s.render(w, r, http.StatusOK, "platform", pg)
	return nil
}

func (s *server) platformDesignDownload(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	y, err := design.MarshalYAML(p.Design)
	if err != nil {
		return fmt.Errorf("marshal design of platform %d: %w", p.ID, err)
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", p.Name+".yaml"))
	w.Write(y)
	return nil
}

func (s *server) platformDeletePage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "platform_delete", &page{Title: "Delete " + p.Name, Section: "platforms", Data: p})
	return nil
}

func (s *server) platformDeleteSubmit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(r.PostForm.Get("confirm")) != p.Name {
		fe := &formErrors{Message: "The platform was not deleted."}
		fe.add("confirm", "Platform name", "Type the platform's name exactly to confirm.")
		s.render(w, r, http.StatusUnprocessableEntity, "platform_delete", &page{Title: "Delete " + p.Name, Section: "platforms", Data: p, Errs: fe})
		return nil
	}
	if err := s.cfg.Platforms.DeletePlatform(r.Context(), p.ID); err != nil {
		if myt.ErrorCode(err) == myt.EINVALID || myt.ErrorCode(err) == myt.ECONFLICT {
			s.render(w, r, http.StatusUnprocessableEntity, "platform_delete", &page{Title: "Delete " + p.Name, Section: "platforms", Data: p, Errs: &formErrors{Message: myt.ErrorMessage(err)}})
			return nil
		}
		return err
	}
	s.log.Info("platform deleted", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name)
	http.Redirect(w, r, "/?ok=deleted", http.StatusSeeOther)
	return nil
}

type importView struct {
	Document string
	// Platform is set when editing an existing platform's design.
	Platform *myt.Platform
}

func (s *server) importPage(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "import", &page{Title: "Import a design", Section: "platforms", Data: &importView{Document: exampleDesign}})
	return nil
}

const exampleDesign = `apiVersion: myt/v1
kind: Platform
metadata:
  name: greenhouse
spec:
  target:
    provider: local
  database:
    kind: timescaledb
    fields: {temperature: float, humidity: float}
  broker: {mqtt: true, amqp: true, tls: true, plaintext: false}
`

func (s *server) importSubmit(w http.ResponseWriter, r *http.Request) error {
	doc := r.PostForm.Get("document")
	if r.MultipartForm != nil {
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 && fhs[0].Size > 0 {
			f, err := fhs[0].Open()
			if err != nil {
				return fmt.Errorf("open uploaded design: %w", err)
			}
			b, err := io.ReadAll(io.LimitReader(f, design.MaxDocumentBytes+1))
			f.Close()
			if err != nil {
				return fmt.Errorf("read uploaded design: %w", err)
			}
			doc = string(b)
		}
	}
	v := &importView{Document: doc}
	d, err := design.Parse([]byte(doc))
	if err == nil {
		var p *myt.Platform
		p, err = s.cfg.Platforms.CreatePlatform(r.Context(), d)
		if err == nil {
			s.log.Info("platform imported", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name)
			http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"?created=1", http.StatusSeeOther)
			return nil
		}
	}
	fe := s.errorsFrom(r, err, nil)
	if myt.ErrorCode(err) == myt.ECONFLICT {
		fe.Message = myt.ErrorMessage(err) + " Change metadata.name, or delete the other platform first."
	}
	s.render(w, r, http.StatusUnprocessableEntity, "import", &page{Title: "Import a design", Section: "platforms", Data: v, Errs: fe})
	return nil
}

func sortedFieldNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *server) platformEditPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	y, err := design.MarshalYAML(p.Design)
	if err != nil {
		return fmt.Errorf("marshal design of platform %d: %w", p.ID, err)
	}
	s.render(w, r, http.StatusOK, "import", &page{Title: "Edit " + p.Name, Section: "platforms", Data: &importView{Document: string(y), Platform: p}})
	return nil
}

func (s *server) platformEditSubmit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	doc := r.PostForm.Get("document")
	d, err := design.Parse([]byte(doc))
	if err == nil {
		_, err = s.cfg.Platforms.UpdatePlatform(r.Context(), p.ID, d)
	}
	if err != nil {
		fe := s.errorsFrom(r, err, nil)
		s.render(w, r, http.StatusUnprocessableEntity, "import", &page{Title: "Edit " + p.Name, Section: "platforms", Data: &importView{Document: doc, Platform: p}, Errs: fe})
		return nil
	}
	s.log.Info("platform design updated", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name)
	http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"?updated=1", http.StatusSeeOther)
	return nil
}

type handlerView struct {
	P       *myt.Platform
	Handler string
}

func (s *server) platformHandlerPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	code := p.Design.Spec.Processing.Handler
	if code == "" {
		code = string(handler.Template())
	}
	s.render(w, r, http.StatusOK, "handler", &page{Title: "Processing code of " + p.Name, Section: "platforms", Data: &handlerView{P: p, Handler: code}})
	return nil
}

func (s *server) platformHandlerSubmit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	code := r.PostForm.Get("handler")
	up, err := uploadedFile(r, "handler_file", myt.MaxHandlerBytes+1)
	if err != nil {
		return err
	}
	if up != "" {
		code = up
	}
	code = strings.ReplaceAll(code, "\r\n", "\n")
	if r.PostForm.Get("passthrough") == "1" {
		code = ""
	}
	d := *p.Design
	d.Spec.Processing.Handler = code
	updated, err := s.cfg.Platforms.UpdatePlatform(r.Context(), p.ID, &d)
	if err != nil {
		fe := s.errorsFrom(r, err, func(path string) (string, string, bool) {
			return "handler", "handler.py", path == "spec.processing.handler"
		})
		s.render(w, r, http.StatusUnprocessableEntity, "handler", &page{Title: "Processing code of " + p.Name, Section: "platforms", Data: &handlerView{P: p, Handler: code}, Errs: fe})
		return nil
	}
	s.log.Info("platform handler updated", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "revision", updated.Revision)
	http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"?updated=1", http.StatusSeeOther)
	return nil
}
