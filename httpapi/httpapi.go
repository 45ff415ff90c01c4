// Package httpapi serves MyT's JSON API under /api/v1 and provides the Go
// client that the CLI uses. Requests authenticate with a personal API token
// ("Authorization: Bearer mytt_..."); errors are
// {"error": {"code": ..., "message": ..., "fields": [...]}}.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/throttle"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 2 << 20

// DefaultTokenTTL is how long a token issued by login lasts unused.
const DefaultTokenTTL = 30 * 24 * time.Hour

// Config wires the API to its services.
type Config struct {
	Users       myt.UserService
	Sessions    myt.SessionService
	Credentials myt.CredentialService
	Platforms   myt.PlatformService
	Admin       myt.AdminService
	Jobs        myt.JobService
	Connections myt.ConnectionService
	Code        myt.CodeService
	// Workers reach running platforms' workers (trying code, dead
	// letters); nil answers those routes 404.
	Workers myt.WorkerService
	// Devices manages platforms' device credentials; nil answers those
	// routes 404.
	Devices myt.DeviceService
	// Monitor serves platforms' health and metric history; nil answers
	// those routes 404.
	Monitor Monitor
	// Alerts serves the alert routes of a platform; nil answers them 404.
	Alerts *alert.Service
	// Backups lists, streams and schedules backups; nil answers those
	// routes 404.
	Backups myt.BackupService
	Logger  *slog.Logger
	// Login guards sign-ins (login and setup): budgets per address and
	// account, and a bound on concurrent password checks. Nil means a
	// guard of its own.
	Login *throttle.Guard
	// TokenTTL is how long a token issued by login lasts after its last
	// use (a sliding lifetime); 0 means DefaultTokenTTL.
	TokenTTL time.Duration
	// Registerer receives the API's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Server is the JSON API. It implements http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
}

// route is one endpoint; the table drives the mux, the OpenAPI document's
// test and the authorization test matrix.
type route struct {
	method, path string
	// public routes need no token.
	public bool
	// admin routes are refused (403) to non-admins before the body is read.
	admin   bool
	handler func(s *Server, w http.ResponseWriter, r *http.Request) error
}

// Routes lists "METHOD /path" of every endpoint, for tests and docs.
func Routes() []string {
	routes := routeTable()
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.method + " " + rt.path
	}
	return out
}

// PublicRoutes lists the endpoints that need no token.
func PublicRoutes() []string {
	var out []string
	for _, rt := range routeTable() {
		if rt.public {
			out = append(out, rt.method+" "+rt.path)
		}
	}
	return out
}

// routeTable returns every endpoint (a function, not a variable, because the
// OpenAPI handler reads the table too).
func routeTable() []route {
	return []route{
		{"GET", "/api/v1/openapi.json", true, false, (*Server).openAPI},
		{"GET", "/api/v1/status", true, false, (*Server).status},
		{"POST", "/api/v1/setup", true, false, (*Server).setup},
		{"POST", "/api/v1/login", true, false, (*Server).login},
		{"POST", "/api/v1/logout", false, false, (*Server).logout},
		{"GET", "/api/v1/me", false, false, (*Server).me},
		{"POST", "/api/v1/me/password", false, false, (*Server).changePassword},
		{"POST", "/api/v1/me/lost-credentials", false, false, (*Server).acknowledgeLost},
		{"GET", "/api/v1/tokens", false, false, (*Server).listTokens},
		{"POST", "/api/v1/tokens", false, false, (*Server).createToken},
		{"DELETE", "/api/v1/tokens/{id}", false, false, (*Server).deleteToken},
		{"GET", "/api/v1/credential-kinds", false, false, (*Server).credentialKinds},
		{"GET", "/api/v1/credentials", false, false, (*Server).listCredentials},
		{"POST", "/api/v1/credentials", false, false, (*Server).createCredential},
		{"GET", "/api/v1/credentials/{id}", false, false, (*Server).getCredential},
		{"DELETE", "/api/v1/credentials/{id}", false, false, (*Server).deleteCredential},
		{"POST", "/api/v1/designs/validate", false, false, (*Server).validateDesign},
		{"GET", "/api/v1/platforms", false, false, (*Server).listPlatforms},
		{"POST", "/api/v1/platforms", false, false, (*Server).createPlatform},
		{"GET", "/api/v1/platforms/{id}", false, false, (*Server).getPlatform},
		{"PUT", "/api/v1/platforms/{id}", false, false, (*Server).updatePlatform},
		{"DELETE", "/api/v1/platforms/{id}", false, false, (*Server).deletePlatform},
		{"POST", "/api/v1/platforms/{id}/jobs", false, false, (*Server).startJob},
		{"GET", "/api/v1/platforms/{id}/ca.crt", false, false, (*Server).platformCA},
		{"GET", "/api/v1/platforms/{id}/secrets/{name}", false, false, (*Server).platformSecret},
		{"GET", "/api/v1/platforms/{id}/alerts/channels", false, false, (*Server).listAlertChannels},
		{"POST", "/api/v1/platforms/{id}/alerts/channels", false, false, (*Server).createAlertChannel},
		{"PATCH", "/api/v1/platforms/{id}/alerts/channels/{channel}", false, false, (*Server).updateAlertChannel},
		{"DELETE", "/api/v1/platforms/{id}/alerts/channels/{channel}", false, false, (*Server).deleteAlertChannel},
		{"POST", "/api/v1/platforms/{id}/alerts/channels/{channel}/test", false, false, (*Server).testAlertChannel},
		{"GET", "/api/v1/platforms/{id}/alerts/rules", false, false, (*Server).listAlertRules},
		{"PATCH", "/api/v1/platforms/{id}/alerts/rules/{rule}", false, false, (*Server).updateAlertRule},
		{"GET", "/api/v1/platforms/{id}/alerts/events", false, false, (*Server).listAlertEvents},
		{"GET", "/api/v1/platforms/{id}/health", false, false, (*Server).platformHealth},
		{"GET", "/api/v1/platforms/{id}/metrics/{metric}", false, false, (*Server).platformMetric},
		{"POST", "/api/v1/platforms/{id}/code", false, false, (*Server).publishCode},
		{"POST", "/api/v1/platforms/{id}/code/test", false, false, (*Server).testCode},
		{"GET", "/api/v1/platforms/{id}/dead", false, false, (*Server).listDeadLetters},
		{"POST", "/api/v1/platforms/{id}/dead/replay", false, false, (*Server).replayDeadLetters},
		{"DELETE", "/api/v1/platforms/{id}/dead", false, false, (*Server).purgeDeadLetters},
		{"GET", "/api/v1/platforms/{id}/export", false, false, (*Server).exportData},
		{"POST", "/api/v1/platforms/{id}/move", false, false, (*Server).moveData},
		{"GET", "/api/v1/platforms/{id}/devices", false, false, (*Server).listDevices},
		{"POST", "/api/v1/platforms/{id}/devices", false, false, (*Server).addDevice},
		{"POST", "/api/v1/platforms/{id}/devices/import", false, false, (*Server).importDevices},
		{"GET", "/api/v1/platforms/{id}/devices/{name}", false, false, (*Server).getDevice},
		{"DELETE", "/api/v1/platforms/{id}/devices/{name}", false, false, (*Server).revokeDevice},
		{"GET", "/api/v1/platforms/{id}/code/versions", false, false, (*Server).listCodeVersions},
		{"GET", "/api/v1/platforms/{id}/code/versions/{version}", false, false, (*Server).getCodeVersion},
		{"POST", "/api/v1/platforms/{id}/code/versions/{version}/rollback", false, false, (*Server).rollbackCode},
		{"GET", "/api/v1/jobs", false, false, (*Server).listJobs},
		{"GET", "/api/v1/jobs/{id}", false, false, (*Server).getJob},
		{"POST", "/api/v1/jobs/{id}/approve", false, false, (*Server).approveJob},
		{"POST", "/api/v1/jobs/{id}/cancel", false, false, (*Server).cancelJob},
		{"GET", "/api/v1/jobs/{id}/log", false, false, (*Server).jobLog},
		{"GET", "/api/v1/platforms/{id}/backups", false, false, (*Server).listBackups},
		{"POST", "/api/v1/platforms/{id}/backups", false, false, (*Server).startBackup},
		{"POST", "/api/v1/platforms/{id}/restore", false, false, (*Server).startRestore},
		{"GET", "/api/v1/platforms/{id}/backup-schedule", false, false, (*Server).getBackupSchedule},
		{"PUT", "/api/v1/platforms/{id}/backup-schedule", false, false, (*Server).putBackupSchedule},
		{"GET", "/api/v1/backups/{id}", false, false, (*Server).getBackup},
		{"GET", "/api/v1/backups/{id}/download", false, false, (*Server).downloadBackup},
		{"DELETE", "/api/v1/backups/{id}", false, false, (*Server).deleteBackup},
		{"GET", "/api/v1/users", false, true, (*Server).listUsers},
		{"POST", "/api/v1/users", false, true, (*Server).createUser},
		{"GET", "/api/v1/users/{id}", false, false, (*Server).getUser},
		{"PATCH", "/api/v1/users/{id}", false, true, (*Server).updateUser},
		{"POST", "/api/v1/users/{id}/password", false, true, (*Server).resetPassword},
		{"GET", "/api/v1/settings", false, false, (*Server).getSettings},
		{"PUT", "/api/v1/settings", false, true, (*Server).putSettings},
		{"GET", "/api/v1/invites", false, true, (*Server).listInvites},
		{"POST", "/api/v1/invites", false, true, (*Server).createInvite},
		{"DELETE", "/api/v1/invites/{id}", false, true, (*Server).deleteInvite},
	}
}

// New returns the API server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Login == nil {
		cfg.Login = throttle.NewGuard()
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), metrics: newMetrics(cfg.Registerer)}
	for _, rt := range routeTable() {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, myt.Errorf(myt.ENOTFOUND, "No such API endpoint: %s %s.", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) wrap(rt route) http.Handler {
	pattern := rt.method + " " + rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		w = sw
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		var err error
		if !rt.public {
			var ctx context.Context
			ctx, err = s.authenticate(r)
			if err == nil {
				r = r.WithContext(ctx)
			}
		}
		if err == nil && rt.admin && !myt.UserFromContext(r.Context()).Admin {
			err = myt.Errorf(myt.EFORBIDDEN, "Only administrators can do this.")
		}
		if err == nil {
			err = rt.handler(s, w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
		s.metrics.observe(pattern, sw.status, time.Since(start))
	})
}

func (s *Server) authenticate(r *http.Request) (context.Context, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return nil, myt.Errorf(myt.EUNAUTHORIZED, "This endpoint needs an API token: send \"Authorization: Bearer <token>\" (create one with `myt login` or on the API tokens page).")
	}
	a, _, err := s.cfg.Sessions.Authenticate(r.Context(), strings.TrimSpace(token))
	if err != nil {
		return nil, err
	}
	return myt.NewContextWithAuth(r.Context(), a), nil
}

// errorBody is the JSON shape of every error.
type errorBody struct {
	Error struct {
		Code    string           `json:"code"`
		Message string           `json:"message"`
		Fields  []myt.FieldError `json:"fields,omitempty"`
	} `json:"error"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = myt.Errorf(myt.ETOOLARGE, "The request body is larger than %d bytes.", mbe.Limit)
	}
	if ref := (*throttle.Refusal)(nil); errors.As(err, &ref) {
		w.Header().Set("Retry-After", strconv.Itoa(int(ref.RetryAfter.Seconds())))
	}
	code := myt.ErrorCode(err)
	if code == myt.EINTERNAL {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var body errorBody
	body.Error.Code = code
	body.Error.Message = myt.ErrorMessage(err)
	body.Error.Fields = myt.ErrorFields(err)
	if code == myt.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="myt"`)
	}
	writeJSON(w, myt.HTTPStatus(code), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// decode reads a JSON body strictly into v: unknown fields and wrong types
// are EINVALID errors naming the field.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/json" {
			return myt.Errorf(myt.EINVALID, "Send the request body as application/json (got %s).", mt)
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return myt.Errorf(myt.EINVALID, "The request body is empty; send a JSON object.")
		case errors.As(err, &ute):
			return &myt.Error{Code: myt.EINVALID, Message: "The request body has a value of the wrong type.", Fields: []myt.FieldError{{Field: ute.Field, Message: fmt.Sprintf("%s given; must be %s", ute.Value, ute.Type)}}}
		case errors.As(err, &se):
			return myt.Errorf(myt.EINVALID, "The request body is not valid JSON (at byte %d).", se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &myt.Error{Code: myt.EINVALID, Message: "The request body has an unknown field.", Fields: []myt.FieldError{{Field: name, Message: "unknown field"}}}
		default:
			return myt.Errorf(myt.EINVALID, "The request body could not be read as JSON.")
		}
	}
	return nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "myt_api_requests_total", Help: "API requests by route and status."}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "myt_api_request_duration_seconds", Help: "API request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
