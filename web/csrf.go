package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/myt-iot/myt"
)

// csrfField is the name of the hidden anti-forgery input in every form.
const csrfField = "csrf"

// csrfToken returns the anti-forgery token for forms on this request's
// page: bound to the session when there is one (the session's own CSRF
// value, or an HMAC of its secret), else the double-submit cookie, which it
// sets when missing.
func (s *server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	st := stateFrom(r.Context())
	if st.auth != nil {
		return s.sessionCSRF(st)
	}
	if c, err := r.Cookie(s.csrfCookieName()); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: s.csrfCookieName(), Value: v, Path: "/", HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
	// Later calls in the same request must see the same value.
	r.AddCookie(&http.Cookie{Name: s.csrfCookieName(), Value: v})
	return v
}

// csrfCookieName is the anonymous forms' cookie: behind TLS it is
// __Host- prefixed, which browsers accept only from this very origin over
// HTTPS, so a sibling subdomain or a plain-http attacker cannot plant a
// value of their choosing (and with it a token that would pass).
func (s *server) csrfCookieName() string {
	if s.cfg.SecureCookies {
		return "__Host-" + csrfCookie
	}
	return csrfCookie
}

func (s *server) sessionCSRF(st *reqState) string {
	if st.session != nil && st.session.CSRF != "" {
		return st.session.CSRF
	}
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(st.token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies the token of a POST. Anonymous routes accept the
// double-submit cookie, or the session token when someone signed in posts.
func (s *server) checkCSRF(r *http.Request, st *reqState, who access) error {
	got := r.PostForm.Get(csrfField)
	var want string
	switch {
	case st.auth != nil:
		want = s.sessionCSRF(st)
	case who == anon:
		if c, err := r.Cookie(s.csrfCookieName()); err == nil {
			want = c.Value
		}
	}
	if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return myt.Errorf(myt.EFORBIDDEN, "This form has expired or was not sent from MyT. Go back, reload the page and try again.")
	}
	return nil
}

func (s *server) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
		MaxAge: int(sessionTTL.Seconds()),
	})
}

func (s *server) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1,
	})
}
