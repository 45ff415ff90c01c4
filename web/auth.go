package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/throttle"
)

type authForm struct {
	Username string
	Next     string
	Invite   string
	// Mode is "setup", "login" or "signup".
	Mode string
	// OpenSignup tells the login page to offer a sign-up link.
	OpenSignup bool
}

// beginSignIn reserves the budgets of a sign-in (or of a sign-up, with no
// username: every sign-up may be a guessed invitation) and a
// password-check slot; see throttle.Guard. The caller ends the attempt
// with Done. A refusal sets the Retry-After header.
func (s *server) beginSignIn(w http.ResponseWriter, r *http.Request, username string) (*throttle.Attempt, error) {
	att, err := s.cfg.Login.Begin(r.Context(), r, username)
	if ref := (*throttle.Refusal)(nil); errors.As(err, &ref) {
		w.Header().Set("Retry-After", strconv.Itoa(int(ref.RetryAfter.Seconds())))
	}
	if err != nil {
		s.log.Warn("sign-in refused", "ip", throttle.ClientIP(r), "user_tag", s.cfg.Login.Tag(username), "reason", myt.ErrorMessage(err))
	}
	return att, err
}

// startSession signs a in: creates the web session and sets the cookie.
func (s *server) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, a *myt.Auth) error {
	token, _, err := s.cfg.Sessions.CreateSession(ctx, a, myt.SessionWeb, sessionName(r), myt.Lifetime{TTL: sessionTTL})
	if err != nil {
		return err
	}
	s.setSessionCookie(w, token)
	// From here on forms carry the session's own token: the anonymous
	// forms' cookie ends with the anonymous visit.
	s.clearCookie(w, s.csrfCookieName())
	return nil
}

// sessionName labels a browser session in lists.
func sessionName(r *http.Request) string {
	ua := r.UserAgent()
	switch {
	case strings.Contains(ua, "Firefox"):
		return "browser (Firefox)"
	case strings.Contains(ua, "Chrome"):
		return "browser (Chromium)"
	case strings.Contains(ua, "Safari"):
		return "browser (Safari)"
	}
	return "browser"
}

func (s *server) setupPage(w http.ResponseWriter, r *http.Request) error {
	if s.setupDone.Load() {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	s.render(w, r, http.StatusOK, "auth", &page{Title: "Welcome to MyT", Bare: true, Data: &authForm{Mode: "setup"}})
	return nil
}

func (s *server) setupSubmit(w http.ResponseWriter, r *http.Request) error {
	if s.setupDone.Load() {
		return myt.Errorf(myt.EFORBIDDEN, "MyT is already set up. Sign in instead.")
	}
	return s.createAndSignIn(w, r, "setup", "")
}

func (s *server) signupPage(w http.ResponseWriter, r *http.Request) error {
	if stateFrom(r.Context()).auth != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	invite := r.URL.Query().Get("invite")
	if invite == "" {
		st, err := s.cfg.Admin.Settings(r.Context())
		if err != nil {
			return err
		}
		if !st.OpenSignup {
			return myt.Errorf(myt.EFORBIDDEN, "Sign-up is by invitation. Ask an administrator of this MyT for an invitation link.")
		}
	}
	s.render(w, r, http.StatusOK, "auth", &page{Title: "Create your account", Bare: true, Data: &authForm{Mode: "signup", Invite: invite}})
	return nil
}

func (s *server) signupSubmit(w http.ResponseWriter, r *http.Request) error {
	return s.createAndSignIn(w, r, "signup", r.PostForm.Get("invite"))
}

// createAndSignIn handles the setup and sign-up forms.
func (s *server) createAndSignIn(w http.ResponseWriter, r *http.Request, mode, invite string) error {
	ctx := r.Context()
	f := &authForm{Mode: mode, Invite: invite, Username: strings.TrimSpace(r.PostForm.Get("username"))}
	title := map[string]string{"setup": "Welcome to MyT", "signup": "Create your account"}[mode]
	fail := func(fe *formErrors) error {
		s.render(w, r, http.StatusUnprocessableEntity, "auth", &page{Title: title, Bare: true, Data: f, Errs: fe})
		return nil
	}
	// Invitation codes are secrets worth guessing; first-run setup has
	// none, so it does not spend the login budget.
	if mode == "signup" {
		att, err := s.beginSignIn(w, r, "")
		if err != nil {
			return err
		}
		defer att.Done(false) // every sign-up counts
	}
	pw, pw2 := r.PostForm.Get("password"), r.PostForm.Get("password2")
	in := myt.UserCreate{Username: f.Username, Password: pw, Invite: invite, Admin: mode == "setup"}
	if pw != pw2 {
		// Every problem of the form at once, not the mismatch first.
		fe := &formErrors{Message: "The form has a problem."}
		for _, f := range myt.ErrorFields(in.Validate()) {
			if name, label, ok := userInput(f.Field); ok {
				fe.add(name, label, f.Message)
			}
		}
		fe.add("password2", "Repeat password", "The two passwords are not the same.")
		return fail(fe)
	}
	if _, err := s.cfg.Users.CreateUser(ctx, in); err != nil {
		if myt.ErrorCode(err) == myt.EFORBIDDEN && mode == "setup" {
			return myt.Errorf(myt.EFORBIDDEN, "MyT is already set up. Sign in instead.")
		}
		if myt.ErrorCode(err) == myt.EFORBIDDEN {
			return fail(&formErrors{Message: myt.ErrorMessage(err)})
		}
		return fail(s.errorsFrom(r, err, userInput))
	}
	s.setupDone.Store(true)
	a, err := s.cfg.Users.Authenticate(ctx, f.Username, pw)
	if err != nil {
		return err
	}
	if err := s.startSession(ctx, w, r, a); err != nil {
		return err
	}
	s.log.Info("account created from the web", "user", a.User.Username, "mode", mode)
	http.Redirect(w, r, "/?welcome=1", http.StatusSeeOther)
	return nil
}

// userInput maps user-creation error paths to the form's inputs.
func userInput(path string) (string, string, bool) {
	switch {
	case strings.Contains(path, "username"):
		return "username", "Username", true
	case strings.Contains(path, "password"):
		return "password", "Password", true
	case strings.Contains(path, "invite"):
		return "", "", false
	}
	return "", "", false
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	if stateFrom(r.Context()).auth != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	st, err := s.cfg.Admin.Settings(r.Context())
	if err != nil {
		return err
	}
	p := &page{Title: "Sign in", Bare: true, Data: &authForm{Mode: "login", Next: next, OpenSignup: st.OpenSignup}}
	if r.URL.Query().Get("out") == "1" {
		p.Notice = "You are signed out."
	}
	s.render(w, r, http.StatusOK, "auth", p)
	return nil
}

func (s *server) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f := &authForm{Mode: "login", Username: strings.TrimSpace(r.PostForm.Get("username")), Next: safeNext(r.PostForm.Get("next"))}
	att, err := s.beginSignIn(w, r, f.Username)
	if err != nil {
		s.render(w, r, http.StatusTooManyRequests, "auth", &page{Title: "Sign in", Bare: true, Data: f, Errs: &formErrors{Message: myt.ErrorMessage(err)}})
		return nil
	}
	a, err := s.cfg.Users.Authenticate(ctx, f.Username, r.PostForm.Get("password"))
	att.Done(err == nil) // a right password refunds the budgets
	if err != nil {
		if myt.ErrorCode(err) != myt.EUNAUTHORIZED {
			return err
		}
		// What was typed as a name may be a password: log its tag.
		s.log.Info("web login failed", "ip", throttle.ClientIP(r), "user_tag", s.cfg.Login.Tag(f.Username))
		s.render(w, r, http.StatusUnauthorized, "auth", &page{Title: "Sign in", Bare: true, Data: f,
			Errs: &formErrors{Message: "The username or password is not right, or the account is disabled."}})
		return nil
	}
	if err := s.startSession(ctx, w, r, a); err != nil {
		return err
	}
	s.log.Info("web login", "user", a.User.Username, "user_tag", s.cfg.Login.Tag(a.User.Username))
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
	return nil
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) error {
	st := stateFrom(r.Context())
	if st.session != nil {
		if err := s.cfg.Sessions.DeleteSession(r.Context(), st.session.ID); err != nil && myt.ErrorCode(err) != myt.ENOTFOUND {
			return err
		}
	}
	s.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
	return nil
}
