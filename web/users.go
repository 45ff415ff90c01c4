package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

type usersView struct {
	Users    []*myt.User
	Invites  []*myt.Invite
	Settings *myt.Settings
	Me       int64
	// Create form.
	Username string
	Admin    bool
	// An invitation just created: its link, shown once.
	InviteLink string
	// ListError is a refused action on the accounts list.
	ListError *formErrors
}

func (s *server) usersView(r *http.Request) (*usersView, error) {
	ctx := r.Context()
	us, err := s.cfg.Users.FindUsers(ctx)
	if err != nil {
		return nil, err
	}
	is, err := s.cfg.Admin.FindInvites(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.cfg.Admin.Settings(ctx)
	if err != nil {
		return nil, err
	}
	return &usersView{Users: us, Invites: is, Settings: st, Me: myt.UserFromContext(ctx).ID}, nil
}

var userNotices = map[string]string{
	"created":  "The account was created. Tell its owner their username and password; they can change the password on their account page.",
	"disabled": "The account was disabled and its sessions and API tokens ended.",
	"enabled":  "The account was enabled.",
	"reset":    "The password was reset. The user's sessions ended; they will be asked to enter their credentials again.",
	"deleted":  "The invitation was deleted.",
	"settings": "Settings saved.",
}

func (s *server) usersPage(w http.ResponseWriter, r *http.Request) error {
	v, err := s.usersView(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "users", &page{Title: "Users", Section: "users", Data: v, Notice: userNotices[r.URL.Query().Get("ok")]})
	return nil
}

func (s *server) userCreate(w http.ResponseWriter, r *http.Request) error {
	in := myt.UserCreate{
		Username: strings.TrimSpace(r.PostForm.Get("username")),
		Password: r.PostForm.Get("password"),
		Admin:    r.PostForm.Get("admin") == "1",
	}
	u, err := s.cfg.Users.CreateUser(r.Context(), in)
	if err != nil {
		v, verr := s.usersView(r)
		if verr != nil {
			return verr
		}
		v.Username, v.Admin = in.Username, in.Admin
		fe := s.errorsFrom(r, err, userInput)
		if myt.ErrorCode(err) == myt.ECONFLICT {
			fe = &formErrors{Message: "The account was not created."}
			fe.add("username", "Username", "This username is taken.")
		}
		s.render(w, r, http.StatusUnprocessableEntity, "users", &page{Title: "Users", Section: "users", Data: v, Errs: fe})
		return nil
	}
	s.log.Info("user created by admin", "admin", myt.UserFromContext(r.Context()).Username, "user", u.Username, "is_admin", u.Admin)
	http.Redirect(w, r, "/admin/users?ok=created", http.StatusSeeOther)
	return nil
}

func (s *server) userSetDisabled(disabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := myt.ParseID(r.PathValue("id"))
		if err != nil {
			return err
		}
		if _, err := s.cfg.Users.UpdateUser(r.Context(), id, myt.UserUpdate{Disabled: &disabled}); err != nil {
			if myt.ErrorCode(err) != myt.EINVALID {
				return err
			}
			v, verr := s.usersView(r)
			if verr != nil {
				return verr
			}
			v.ListError = &formErrors{Message: myt.ErrorMessage(err)}
			s.render(w, r, http.StatusBadRequest, "users", &page{Title: "Users", Section: "users", Data: v})
			return nil
		}
		ok := "enabled"
		if disabled {
			ok = "disabled"
		}
		http.Redirect(w, r, "/admin/users?ok="+ok, http.StatusSeeOther)
		return nil
	}
}

func (s *server) userResetPage(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	u, err := s.cfg.Users.FindUserByID(r.Context(), id)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "user_reset", &page{Title: "Reset password of " + u.Username, Section: "users", Data: u})
	return nil
}

func (s *server) userResetSubmit(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	u, err := s.cfg.Users.FindUserByID(r.Context(), id)
	if err != nil {
		return err
	}
	pw := r.PostForm.Get("password")
	if err := s.cfg.Users.ResetPassword(r.Context(), id, pw); err != nil {
		fe := s.errorsFrom(r, err, userInput)
		if len(fe.Fields) == 0 && fe.Message != "" && myt.ErrorCode(err) == myt.EINVALID {
			fe.add("password", "New password", fe.Message)
		}
		s.render(w, r, http.StatusUnprocessableEntity, "user_reset", &page{Title: "Reset password of " + u.Username, Section: "users", Data: u, Errs: fe})
		return nil
	}
	s.log.Info("password reset by admin", "admin", myt.UserFromContext(r.Context()).Username, "user", u.Username)
	http.Redirect(w, r, "/admin/users?ok=reset", http.StatusSeeOther)
	return nil
}

// inviteTTL is how long an invitation link works.
const inviteTTL = 7 * 24 * time.Hour

func (s *server) inviteCreate(w http.ResponseWriter, r *http.Request) error {
	inv, err := s.cfg.Admin.CreateInvite(r.Context(), inviteTTL)
	if err != nil {
		return err
	}
	v, err := s.usersView(r)
	if err != nil {
		return err
	}
	v.InviteLink = baseURL(r) + "/signup?invite=" + url.QueryEscape(inv.Code)
	s.render(w, r, http.StatusOK, "users", &page{Title: "Users", Section: "users", Data: v})
	return nil
}

func (s *server) inviteDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Admin.DeleteInvite(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/users?ok=deleted#invitations", http.StatusSeeOther)
	return nil
}

func (s *server) settingsUpdate(w http.ResponseWriter, r *http.Request) error {
	st := myt.Settings{OpenSignup: r.PostForm.Get("open_signup") == "1"}
	if err := s.cfg.Admin.UpdateSettings(r.Context(), st); err != nil {
		return err
	}
	s.log.Info("settings updated", "admin", myt.UserFromContext(r.Context()).Username, "open_signup", st.OpenSignup)
	http.Redirect(w, r, "/admin/users?ok=settings#settings", http.StatusSeeOther)
	return nil
}

// baseURL is the scheme and host the browser used to reach MyT.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *server) accountPage(w http.ResponseWriter, r *http.Request) error {
	p := &page{Title: "Your account", Section: "account"}
	switch r.URL.Query().Get("ok") {
	case "password":
		p.Notice = "Your password was changed. Your saved credentials stay readable."
	}
	s.render(w, r, http.StatusOK, "account", p)
	return nil
}

func (s *server) accountPassword(w http.ResponseWriter, r *http.Request) error {
	old, pw, pw2 := r.PostForm.Get("old_password"), r.PostForm.Get("password"), r.PostForm.Get("password2")
	fe := &formErrors{}
	if pw != pw2 {
		fe.add("password2", "Repeat new password", "The two new passwords are not the same.")
	}
	if !fe.Any() {
		if err := s.cfg.Users.ChangePassword(r.Context(), old, pw); err != nil {
			switch myt.ErrorCode(err) {
			case myt.EUNAUTHORIZED:
				fe.add("old_password", "Current password", "This is not your current password.")
			default:
				fe = s.errorsFrom(r, err, userInput)
				if len(fe.Fields) == 0 && myt.ErrorCode(err) == myt.EINVALID {
					fe.add("password", "New password", fe.Message)
				}
			}
		}
	}
	if fe.Any() {
		if fe.Message == "" {
			fe.Message = "Your password was not changed."
		}
		s.render(w, r, http.StatusUnprocessableEntity, "account", &page{Title: "Your account", Section: "account", Errs: fe})
		return nil
	}
	http.Redirect(w, r, "/account?ok=password", http.StatusSeeOther)
	return nil
}

func (s *server) acknowledgeLost(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Users.AcknowledgeLostCredentials(r.Context()); err != nil {
		return err
	}
	http.Redirect(w, r, "/credentials/new", http.StatusSeeOther)
	return nil
}
