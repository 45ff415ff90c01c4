package httpapi

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/throttle"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	n, err := s.cfg.Users.CountUsers(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, StatusResponse{Version: myt.Version, NeedsSetup: n == 0})
}

// beginSignIn reserves a sign-in's budgets and a password-check slot (see
// throttle.Guard); the caller ends the attempt.
func (s *Server) beginSignIn(r *http.Request, username string) (*throttle.Attempt, error) {
	att, err := s.cfg.Login.Begin(r.Context(), r, username)
	if err != nil {
		s.log.Warn("sign-in refused", "remote", throttle.ClientIP(r), "user_tag", s.cfg.Login.Tag(username), "reason", myt.ErrorMessage(err))
	}
	return att, err
}

func (s *Server) setup(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	att, err := s.beginSignIn(r, req.Username)
	if err != nil {
		return err
	}
	a, err := s.createFirstUser(r, req)
	att.Done(err == nil)
	if err != nil {
		return err
	}
	return s.issueToken(w, r, req, a)
}

func (s *Server) createFirstUser(r *http.Request, req LoginRequest) (*myt.Auth, error) {
	n, err := s.cfg.Users.CountUsers(r.Context())
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, myt.Errorf(myt.ECONFLICT, "MyT is already set up: sign in instead.")
	}
	if _, err := s.cfg.Users.CreateUser(r.Context(), myt.UserCreate{Username: req.Username, Password: req.Password}); err != nil {
		return nil, err
	}
	return s.cfg.Users.Authenticate(r.Context(), req.Username, req.Password)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	att, err := s.beginSignIn(r, req.Username)
	if err != nil {
		return err
	}
	a, err := s.cfg.Users.Authenticate(r.Context(), req.Username, req.Password)
	att.Done(err == nil) // a right password refunds the budgets
	if err != nil {
		if myt.ErrorCode(err) == myt.EUNAUTHORIZED {
			s.log.Info("api login failed", "remote", throttle.ClientIP(r), "user_tag", s.cfg.Login.Tag(req.Username))
		}
		return err
	}
	return s.issueToken(w, r, req, a)
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, req LoginRequest, a *myt.Auth) error {
	name := req.TokenName
	if name == "" {
		name = "myt login"
	}
	token, sess, err := s.cfg.Sessions.CreateSession(r.Context(), a, myt.SessionAPI, name, myt.Lifetime{TTL: s.cfg.TokenTTL, Sliding: true})
	if err != nil {
		return err
	}
	s.log.Info("api token issued at login", "user", a.User.Username, "user_tag", s.cfg.Login.Tag(a.User.Username), "token", sess.Name)
	return writeJSON(w, http.StatusCreated, TokenResponse{Token: token, Session: sess, User: a.User})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Sessions.DeleteSession(r.Context(), myt.AuthFromContext(r.Context()).SessionID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	u, err := s.cfg.Users.FindUserByID(r.Context(), myt.UserFromContext(r.Context()).ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	var req PasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.cfg.Users.ChangePassword(r.Context(), req.Old, req.New); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) acknowledgeLost(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Users.AcknowledgeLostCredentials(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.cfg.Sessions.FindSessions(r.Context(), myt.SessionAPI)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ts))
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	token, sess, err := s.cfg.Sessions.CreateSession(r.Context(), myt.AuthFromContext(r.Context()), myt.SessionAPI, req.Name, myt.Lifetime{})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, TokenResponse{Token: token, Session: sess})
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Sessions.DeleteSession(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) credentialKinds(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, credential.Kinds)
}

func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) error {
	var f myt.CredentialFilter
	if k := r.URL.Query().Get("kind"); k != "" {
		f.Kind = &k
	}
	cs, err := s.cfg.Credentials.FindCredentials(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(cs))
}

func (s *Server) createCredential(w http.ResponseWriter, r *http.Request) error {
	var req CredentialRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := &myt.Credential{Name: req.Name, Kind: req.Kind, Public: req.Public}
	if err := s.cfg.Credentials.CreateCredential(r.Context(), c, myt.Secret(req.Secret)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.cfg.Credentials.FindCredentialByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Credentials.DeleteCredential(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readDesign reads a design document body: JSON or YAML.
func readDesign(r *http.Request) (*myt.Design, error) { return readDesignWith(r, design.Parse) }

// readDesignWith reads a design document body with parse.
func readDesignWith(r *http.Request, parse func([]byte) (*myt.Design, error)) (*myt.Design, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch mt {
		case "application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/plain":
		default:
			return nil, myt.Errorf(myt.EINVALID, "Send the design as application/json or application/yaml (got %s).", mt)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	return parse(body)
}

func (s *Server) validateDesign(w http.ResponseWriter, r *http.Request) error {
	d, err := readDesign(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ValidateResponse{Design: d})
}

func (s *Server) listPlatforms(w http.ResponseWriter, r *http.Request) error {
	var f myt.PlatformFilter
	if n := r.URL.Query().Get("name"); n != "" {
		f.Name = &n
	}
	ps, err := s.cfg.Platforms.FindPlatforms(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ps))
}

func (s *Server) createPlatform(w http.ResponseWriter, r *http.Request) error {
	d, err := readDesignWith(r, design.ParsePartial)
	if err != nil && d != nil {
		// Say now what creating it would refuse next: every error in one
		// answer, not one round at a time.
		if c, ok := s.cfg.Platforms.(myt.NewPlatformChecker); ok {
			err = myt.WithMoreFields(err, c.CheckNewPlatform(r.Context(), d))
		}
	}
	if err != nil {
		return err
	}
	p, err := s.cfg.Platforms.CreatePlatform(r.Context(), d)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/platforms/"+strconv.FormatInt(p.ID, 10))
	return writeJSON(w, http.StatusCreated, p)
}

func (s *Server) getPlatform(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	p, err := s.cfg.Platforms.FindPlatformByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) updatePlatform(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	// Ownership first, so another user's id is 404 even with a bad body.
	if _, err := s.cfg.Platforms.FindPlatformByID(r.Context(), id); err != nil {
		return err
	}
	d, err := readDesign(r)
	if err != nil {
		return err
	}
	p, err := s.cfg.Platforms.UpdatePlatform(r.Context(), id, d)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) deletePlatform(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Platforms.DeletePlatform(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := s.cfg.Users.FindUsers(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(us))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req UserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.cfg.Users.CreateUser(r.Context(), myt.UserCreate{Username: req.Username, Password: req.Password, Admin: req.Admin})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, u)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	u, err := s.cfg.Users.FindUserByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req UserPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.cfg.Users.UpdateUser(r.Context(), id, myt.UserUpdate{Admin: req.Admin, Disabled: req.Disabled})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req ResetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.cfg.Users.ResetPassword(r.Context(), id, req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	st, err := s.cfg.Admin.Settings(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) error {
	var st myt.Settings
	if err := decode(r, &st); err != nil {
		return err
	}
	if err := s.cfg.Admin.UpdateSettings(r.Context(), st); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) listInvites(w http.ResponseWriter, r *http.Request) error {
	is, err := s.cfg.Admin.FindInvites(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(is))
}

func (s *Server) createInvite(w http.ResponseWriter, r *http.Request) error {
	var req InviteRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ttl := 7 * 24 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return &myt.Error{Code: myt.EINVALID, Message: "The invitation lifetime is not valid.", Fields: []myt.FieldError{{Field: "ttl", Message: "must be a duration such as 72h"}}}
		}
		ttl = d
	}
	inv, err := s.cfg.Admin.CreateInvite(r.Context(), ttl)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, inv)
}

func (s *Server) deleteInvite(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Admin.DeleteInvite(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
