package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

type tokensView struct {
	Tokens   []*myt.Session
	Sessions []*myt.Session
	Current  int64
	New      string // the token just created, shown once
	NewName  string
	Name     string
	// Server is this MyT's address, for the shell hint.
	Server string
}

// tokenTTLs are the expiry choices of the token form.
var tokenTTLs = []struct {
	Value string
	Label string
	TTL   time.Duration
}{
	{"30d", "30 days", 30 * 24 * time.Hour},
	{"90d", "90 days", 90 * 24 * time.Hour},
	{"365d", "1 year", 365 * 24 * time.Hour},
	{"never", "Never", 0},
}

func (s *server) tokensView(r *http.Request) (*tokensView, error) {
	ts, err := s.cfg.Sessions.FindSessions(r.Context(), myt.SessionAPI)
	if err != nil {
		return nil, err
	}
	ws, err := s.cfg.Sessions.FindSessions(r.Context(), myt.SessionWeb)
	if err != nil {
		return nil, err
	}
	v := &tokensView{Tokens: ts, Sessions: ws, Server: baseURL(r)}
	if st := stateFrom(r.Context()); st.session != nil {
		v.Current = st.session.ID
	}
	return v, nil
}

func (s *server) tokensPage(w http.ResponseWriter, r *http.Request) error {
	v, err := s.tokensView(r)
	if err != nil {
		return err
	}
	p := &page{Title: "API tokens", Section: "tokens", Data: v}
	if r.URL.Query().Get("ok") == "revoked" {
		p.Notice = "The token was revoked. Programs using it are signed out."
	}
	s.render(w, r, http.StatusOK, "tokens", p)
	return nil
}

// TTLOptions are the expiry choices.
func (v *tokensView) TTLOptions() []Option {
	var out []Option
	for _, t := range tokenTTLs {
		out = append(out, Option{Value: t.Value, Label: t.Label})
	}
	return out
}

func (s *server) tokenCreate(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	var ttl time.Duration = -1
	for _, t := range tokenTTLs {
		if t.Value == r.PostForm.Get("ttl") {
			ttl = t.TTL
		}
	}
	fe := &formErrors{}
	switch {
	case name == "":
		fe.add("name", "Name", "Give the token a name, such as the laptop or script that will use it.")
	case len(name) > 100:
		fe.add("name", "Name", "Keep the name under 100 characters.")
	}
	if ttl < 0 {
		fe.add("ttl", "Expires", "Choose when the token expires.")
	}
	auth := myt.AuthFromContext(r.Context())
	var token string
	if !fe.Any() {
		var err error
		token, _, err = s.cfg.Sessions.CreateSession(r.Context(), auth, myt.SessionAPI, name, myt.Lifetime{TTL: ttl})
		if err != nil {
			fe = s.errorsFrom(r, err, func(path string) (string, string, bool) { return "name", "Name", path == "name" })
		}
	}
	v, err := s.tokensView(r)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if fe.Any() {
		if fe.Message == "" {
			fe.Message = "The token was not created."
		}
		v.Name = name
		status = http.StatusUnprocessableEntity
	} else {
		v.New, v.NewName = token, name
		s.log.Info("api token created", "user", auth.User.Username, "token_name", name)
	}
	s.render(w, r, status, "tokens", &page{Title: "API tokens", Section: "tokens", Data: v, Errs: fe})
	return nil
}

func (s *server) tokenRevoke(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Sessions.DeleteSession(r.Context(), id); err != nil {
		return err
	}
	if st := stateFrom(r.Context()); st.session != nil && st.session.ID == id {
		s.clearCookie(w, sessionCookie)
		http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/tokens?ok=revoked", http.StatusSeeOther)
	return nil
}
