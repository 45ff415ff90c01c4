// Package web is MyT's browser interface: server-rendered pages (html/template)
// and static assets, all embedded in the binary, so `go build` is the whole
// build. It consumes the domain services (myt.UserService and friends) and
// never touches storage or the vault directly: every request resolves its
// session cookie to a principal, puts it in the context with
// myt.NewContextWithAuth, and lets the services enforce isolation and admin
// rights.
//
// Security: session cookie HttpOnly, SameSite=Lax, Secure behind TLS; every
// state-changing form carries an anti-forgery token (bound to the session, or
// a double-submit cookie for the anonymous login, setup and sign-up forms)
// and the whole handler sits behind net/http's CrossOriginProtection; login
// attempts go through the throttle.Guard the API shares; a strict
// Content-Security-Policy allows only the embedded script and stylesheet.
package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/throttle"
)

// Config is what New needs. Every service is required.
type Config struct {
	Users       myt.UserService
	Sessions    myt.SessionService
	Credentials myt.CredentialService
	Platforms   myt.PlatformService
	Admin       myt.AdminService
	// Jobs starts and follows deploy, update and destroy jobs;
	// Connections gives a running platform's CA and revealable secrets.
	Jobs        myt.JobService
	Connections myt.ConnectionService
	// Code publishes handlers and lists their versions (the code page);
	// nil hides the page.
	Code myt.CodeService
	// Workers reach running platforms' workers: trying code, dead
	// letters; nil hides those.
	Workers myt.WorkerService
	Logger  *slog.Logger
	// SecureCookies marks cookies Secure; set it when MyT is served over
	// TLS (directly or behind a proxy that terminates it).
	SecureCookies bool
	// Login guards sign-ins and sign-ups: budgets per address and account,
	// and a bound on concurrent password checks. Nil means a guard of its
	// own.
	Login *throttle.Guard
	// Devices manages platforms' device credentials (the devices page);
	// nil hides it.
	Devices myt.DeviceService
	// Monitor gives running platforms' health and history (the platform
	// page's charts, the dashboard's health badges); nil shows neither.
	Monitor Monitor
	// Alerts serves each platform's alerts page (channels, rules,
	// history); nil shows none.
	Alerts *alert.Service
	// Backups lists, streams and schedules backups (the backups page);
	// nil hides the page.
	Backups myt.BackupService
}

// Cookie names.
const (
	sessionCookie = "myt_session"
	csrfCookie    = "myt_csrf" // double-submit token for anonymous forms
)

// maxFormBytes bounds a submitted form (a design document is at most 1 MiB).
const maxFormBytes = 2 << 20

// sessionTTL is how long a browser login lasts.
const sessionTTL = 12 * time.Hour

type server struct {
	cfg       Config
	log       *slog.Logger
	tmpl      *templates
	csrfKey   []byte      // per-process key for session-bound tokens
	setupDone atomic.Bool // true once a user exists: no more CountUsers

	// shutdown holds, per http.Server, a channel closed when it shuts
	// down: it ends the job event streams.
	shutMu   sync.Mutex
	shutdown map[*http.Server]chan struct{}
}

// New returns the web UI handler, to be mounted at "/".
func New(cfg Config) (http.Handler, error) {
	if cfg.Users == nil || cfg.Sessions == nil || cfg.Credentials == nil || cfg.Platforms == nil || cfg.Admin == nil ||
		cfg.Jobs == nil || cfg.Connections == nil {
		return nil, errors.New("web: every service in Config is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Login == nil {
		cfg.Login = throttle.NewGuard()
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &server{cfg: cfg, log: cfg.Logger, tmpl: t, csrfKey: make([]byte, 32), shutdown: map[*http.Server]chan struct{}{}}
	rand.Read(s.csrfKey)

	mux := http.NewServeMux()
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, staticURL("favicon.svg"), http.StatusMovedPermanently)
	})

	// Anonymous pages.
	s.route(mux, "GET /setup", anon, s.setupPage)
	s.route(mux, "POST /setup", anon, s.setupSubmit)
	s.route(mux, "GET /login", anon, s.loginPage)
	s.route(mux, "POST /login", anon, s.loginSubmit)
	s.route(mux, "GET /signup", anon, s.signupPage)
	s.route(mux, "POST /signup", anon, s.signupSubmit)
	s.route(mux, "POST /logout", user, s.logout)

	// Platforms.
	s.route(mux, "GET /{$}", user, s.dashboard)
	s.route(mux, "GET /platforms", user, func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	})
	s.route(mux, "GET /platforms/new", user, s.wizardPage)
	s.route(mux, "POST /platforms/new", user, s.wizardSubmit)
	s.route(mux, "GET /platforms/import", user, s.importPage)
	s.route(mux, "POST /platforms/import", user, s.importSubmit)
	s.route(mux, "GET /platforms/{id}", user, s.platformPage)
	s.route(mux, "GET /platforms/{id}/design.yaml", user, s.platformDesignDownload)
	s.route(mux, "GET /platforms/{id}/handler", user, s.platformHandlerPage)
	s.route(mux, "POST /platforms/{id}/handler", user, s.platformHandlerSubmit)
	s.route(mux, "GET /platforms/{id}/dead", user, s.deadPage)
	s.route(mux, "POST /platforms/{id}/dead/replay", user, s.deadReplay)
	s.route(mux, "POST /platforms/{id}/dead/purge", user, s.deadPurge)
	s.route(mux, "GET /platforms/{id}/data", user, s.dataPage)
	s.route(mux, "GET /platforms/{id}/data/export", user, s.dataExport)
	s.route(mux, "POST /platforms/{id}/data/move", user, s.dataMove)
	s.route(mux, "GET /platforms/{id}/devices", user, s.devicesPage)
	s.route(mux, "POST /platforms/{id}/devices", user, s.deviceAdd)
	s.route(mux, "POST /platforms/{id}/devices/import", user, s.deviceImport)
	s.route(mux, "GET /platforms/{id}/devices/{name}", user, s.devicePage)
	s.route(mux, "POST /platforms/{id}/devices/{name}/revoke", user, s.deviceRevoke)
	s.route(mux, "GET /platforms/{id}/handler/versions/{version}", user, s.codeVersionPage)
	s.route(mux, "POST /platforms/{id}/handler/versions/{version}/rollback", user, s.codeRollback)
	s.route(mux, "GET /platforms/{id}/edit", user, s.platformEditPage)
	s.route(mux, "POST /platforms/{id}/edit", user, s.platformEditSubmit)
	s.route(mux, "GET /platforms/{id}/delete", user, s.platformDeletePage)
	s.route(mux, "POST /platforms/{id}/delete", user, s.platformDeleteSubmit)
	s.route(mux, "GET /platforms/{id}/ca.crt", user, s.platformCA)
	s.route(mux, "POST /platforms/{id}/reveal", user, s.platformReveal)

	// Alerts of a platform (web/alerts.go).
	s.route(mux, "GET /platforms/{id}/alerts", user, s.alertsPage)
	s.route(mux, "POST /platforms/{id}/alerts/channels", user, s.alertChannelAdd)
	s.route(mux, "POST /platforms/{id}/alerts/channels/{channel}/test", user, s.alertChannelTest)
	s.route(mux, "POST /platforms/{id}/alerts/channels/{channel}/delete", user, s.alertChannelDelete)
	s.route(mux, "POST /platforms/{id}/alerts/rules/{rule}", user, s.alertRuleUpdate)

	// Backups of a platform (web/backups.go).
	if cfg.Backups != nil {
		s.route(mux, "GET /platforms/{id}/backups", user, s.backupsPage)
		s.route(mux, "POST /platforms/{id}/backups", user, s.backupStart(myt.JobBackup))
		s.route(mux, "POST /platforms/{id}/restore", user, s.backupStart(myt.JobRestore))
		s.route(mux, "POST /platforms/{id}/backups/schedule", user, s.backupScheduleSave)
		s.route(mux, "GET /platforms/{id}/backups/{backup}/download", user, s.backupDownload)
		s.route(mux, "POST /platforms/{id}/backups/{backup}/delete", user, s.backupDelete)
	}

	// Deploy, update and destroy jobs.
	s.route(mux, "GET /platforms/{id}/deploy", user, s.jobConfirmPage(myt.JobDeploy))
	s.route(mux, "POST /platforms/{id}/deploy", user, s.jobStart(myt.JobDeploy))
	s.route(mux, "GET /platforms/{id}/update", user, s.jobConfirmPage(myt.JobUpdate))
	s.route(mux, "POST /platforms/{id}/update", user, s.jobStart(myt.JobUpdate))
	s.route(mux, "GET /platforms/{id}/destroy", user, s.jobConfirmPage(myt.JobDestroy))
	s.route(mux, "POST /platforms/{id}/destroy", user, s.jobStart(myt.JobDestroy))
	s.route(mux, "GET /platforms/{id}/jobs", user, s.platformJobsPage)
	s.route(mux, "GET /jobs/{id}", user, s.jobPage)
	s.route(mux, "GET /jobs/{id}/events", user, s.jobEvents)
	s.route(mux, "GET /jobs/{id}/log.txt", user, s.jobLogDownload)
	s.route(mux, "POST /jobs/{id}/approve", user, s.jobApprove)
	s.route(mux, "POST /jobs/{id}/cancel", user, s.jobCancel)

	// Credentials.
	s.route(mux, "GET /credentials", user, s.credentialsPage)
	s.route(mux, "GET /credentials/new", user, s.credentialNewPage)
	s.route(mux, "POST /credentials/new", user, s.credentialNewSubmit)
	s.route(mux, "GET /credentials/{id}", user, s.credentialPage)
	s.route(mux, "POST /credentials/{id}/delete", user, s.credentialDelete)

	// API tokens.
	s.route(mux, "GET /tokens", user, s.tokensPage)
	s.route(mux, "POST /tokens", user, s.tokenCreate)
	s.route(mux, "POST /tokens/{id}/revoke", user, s.tokenRevoke)

	// Own account.
	s.route(mux, "GET /account", user, s.accountPage)
	s.route(mux, "POST /account/password", user, s.accountPassword)
	s.route(mux, "POST /account/lost-credentials", user, s.acknowledgeLost)

	// Administration.
	s.route(mux, "GET /admin/users", admin, s.usersPage)
	s.route(mux, "POST /admin/users", admin, s.userCreate)
	s.route(mux, "POST /admin/users/{id}/disable", admin, s.userSetDisabled(true))
	s.route(mux, "POST /admin/users/{id}/enable", admin, s.userSetDisabled(false))
	s.route(mux, "GET /admin/users/{id}/reset", admin, s.userResetPage)
	s.route(mux, "POST /admin/users/{id}/reset", admin, s.userResetSubmit)
	s.route(mux, "POST /admin/invites", admin, s.inviteCreate)
	s.route(mux, "POST /admin/invites/{id}/delete", admin, s.inviteDelete)
	s.route(mux, "POST /admin/settings", admin, s.settingsUpdate)
	routeActionPages(mux)

	// Everything else is a 404 page (for signed-in users) or the login.
	s.route(mux, "/", user, func(w http.ResponseWriter, r *http.Request) error {
		return myt.Errorf(myt.ENOTFOUND, "There is no page at this address.")
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		s.renderError(w, r, myt.Errorf(myt.EFORBIDDEN, "This form was sent from another site, so it was refused."))
	}))
	return securityHeaders(cop.Handler(mux)), nil
}

// access is who may use a route.
type access int

const (
	anon  access = iota // anyone (the page decides what to do with a signed-in user)
	user                // a signed-in user; others are sent to /login
	admin               // a signed-in admin; others get 403
)

// handlerFunc is an http handler that may fail; route renders its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// reqState is what the middleware learned about a request.
type reqState struct {
	auth    *myt.Auth
	session *myt.Session
	token   string // the session secret from the cookie
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	if st == nil {
		return &reqState{}
	}
	return st
}

func (s *server) route(mux *http.ServeMux, pattern string, who access, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		// The state is filled in by serve; the error page reads it too.
		st := &reqState{}
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		// Every answer of a route is the user's own (a page, a design
		// download, a CA certificate): no browser or proxy keeps it. A
		// handler may set its own.
		w.Header().Set("Cache-Control", "no-store")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v) // a download cut short: end it without its end
				}
				s.log.Error("panic in web handler", "path", r.URL.Path, "panic", v)
				s.renderError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		if err := s.serve(w, r, st, pattern, who, h); err != nil {
			s.renderError(w, r, err)
		}
	})
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, st *reqState, pattern string, who access, h handlerFunc) error {
	ctx := r.Context()
	// First run: nothing but the setup page until an admin exists.
	if !s.setupDone.Load() {
		n, err := s.cfg.Users.CountUsers(ctx)
		if err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if n > 0 {
			s.setupDone.Store(true)
		} else if !strings.HasSuffix(pattern, " /setup") {
			http.Redirect(w, r, "/setup", http.StatusSeeOther)
			return nil
		}
	}

	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		a, sess, err := s.cfg.Sessions.Authenticate(ctx, c.Value)
		switch {
		case err == nil:
			st.auth, st.session, st.token = a, sess, c.Value
		case myt.ErrorCode(err) == myt.EUNAUTHORIZED:
			s.clearCookie(w, sessionCookie)
		default:
			return fmt.Errorf("authenticate session: %w", err)
		}
	}
	if st.auth != nil {
		r = r.WithContext(myt.NewContextWithAuth(ctx, st.auth))
	}

	if who >= user && st.auth == nil {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(safeNext(r.URL.RequestURI())), http.StatusSeeOther)
			return nil
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	if who == admin && !st.auth.User.Admin {
		return myt.Errorf(myt.EFORBIDDEN, "Only administrators can manage users.")
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		var err error
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			err = r.ParseMultipartForm(maxFormBytes)
		} else {
			err = r.ParseForm()
		}
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return myt.Errorf(myt.ETOOLARGE, "The form is larger than %d MB, the most MyT accepts.", maxFormBytes>>20)
		} else if err != nil {
			return myt.Errorf(myt.EINVALID, "The form could not be read.")
		}
		if err := s.checkCSRF(r, st, who); err != nil {
			return err
		}
	}
	return h(w, r)
}

// securityHeaders sets the headers every page carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// safeNext returns p if it is a path on this site, else "/". Browsers
// drop tabs and newlines from a URL and read "\\" as "/", so "/\t/evil" and
// "/\\evil" mean "//evil", another site: a path with a control character,
// a space or a backslash is refused outright, and so is one that starts
// with "//" or that parses with a scheme or host.
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "/"
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "/"
	}
	return p
}
