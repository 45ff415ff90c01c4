package deploy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/myt-iot/myt"
)

// StateStore keeps platforms' tool state with its lock (sqlite.StateStore).
type StateStore interface {
	Get(ctx context.Context, platformID int64) ([]byte, error)
	Put(ctx context.Context, platformID int64, lockID string, state []byte) error
	Delete(ctx context.Context, platformID int64, lockID string) error
	Lock(ctx context.Context, platformID int64, lockID, info string) error
	Unlock(ctx context.Context, platformID int64, lockID string) error
}

// maxStateBytes bounds a state document.
const maxStateBytes = 64 << 20

// StateServer serves platforms' state to OpenTofu/Terraform's http
// backend. It listens on loopback only: its clients are the tool
// processes the runner starts on this machine, each with a credential of
// its job that opens only its platform's state and dies with the job.
type StateServer struct {
	store StateStore
	log   *slog.Logger
	ln    net.Listener
	srv   *http.Server

	mu    sync.Mutex
	creds map[string]stateCred // user name -> credential
}

type stateCred struct {
	platformID int64
	password   []byte
}

// StateAccess is what a tool needs to reach one platform's state.
type StateAccess struct {
	URL      string // address, lock and unlock address
	Username string
	Password string // secret: environment only
}

// NewStateServer listens on 127.0.0.1 (a free port) and serves until
// Close.
func NewStateServer(store StateStore, log *slog.Logger) (*StateServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("state backend: %w", err)
	}
	s := &StateServer{store: store, log: log, ln: ln, creds: map[string]stateCred{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state/{platform}", s.handle(s.get))
	mux.HandleFunc("POST /state/{platform}", s.handle(s.put))
	mux.HandleFunc("DELETE /state/{platform}", s.handle(s.delete))
	mux.HandleFunc("LOCK /state/{platform}", s.handle(s.lock))
	mux.HandleFunc("UNLOCK /state/{platform}", s.handle(s.unlock))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("state backend stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops the server.
func (s *StateServer) Close() error { return s.srv.Close() }

// Grant returns a new credential for the platform's state; revoke ends
// it.
func (s *StateServer) Grant(platformID int64) (StateAccess, func()) {
	user := "job-" + randomHex(8)
	pw := randomHex(32)
	s.mu.Lock()
	s.creds[user] = stateCred{platformID: platformID, password: []byte(pw)}
	s.mu.Unlock()
	url := fmt.Sprintf("http://%s/state/%d", s.ln.Addr(), platformID)
	return StateAccess{URL: url, Username: user, Password: pw}, func() {
		s.mu.Lock()
		delete(s.creds, user)
		s.mu.Unlock()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// env is the http backend's configuration as environment variables.
func (a StateAccess) env() map[string]string {
	return map[string]string{
		"TF_HTTP_ADDRESS":        a.URL,
		"TF_HTTP_LOCK_ADDRESS":   a.URL,
		"TF_HTTP_UNLOCK_ADDRESS": a.URL,
		"TF_HTTP_USERNAME":       a.Username,
		"TF_HTTP_PASSWORD":       a.Password,
		"TF_HTTP_RETRY_MAX":      "3",
	}
}

// backendOverride selects the http backend; an *_override.tf file so the
// bundle's own module stays usable with local state ("eject").
const backendOverride = "# Written by the MyT deploy job: state lives in MyT (http backend,\n# configured through TF_HTTP_* variables).\nterraform {\n  backend \"http\" {}\n}\n"

func (s *StateServer) handle(fn func(w http.ResponseWriter, r *http.Request, platformID int64) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("platform"), 10, 64)
		if err != nil {
			http.Error(w, "bad platform", http.StatusNotFound)
			return
		}
		user, pw, ok := r.BasicAuth()
		s.mu.Lock()
		c, known := s.creds[user]
		s.mu.Unlock()
		if !ok || !known || c.platformID != id || subtle.ConstantTimeCompare(c.password, []byte(pw)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="myt state"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxStateBytes)
		if err := fn(w, r, id); err != nil {
			var le *myt.StateLockedError
			if errors.As(err, &le) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusLocked)
				io.WriteString(w, le.Info)
				return
			}
			s.log.Error("state backend", "method", r.Method, "platform", id, "err", err)
			http.Error(w, "state backend error", http.StatusInternalServerError)
		}
	}
}

func (s *StateServer) get(w http.ResponseWriter, r *http.Request, id int64) error {
	st, err := s.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if st == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(st)
	return err
}

func (s *StateServer) put(w http.ResponseWriter, r *http.Request, id int64) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if !json.Valid(b) {
		http.Error(w, "state is not JSON", http.StatusBadRequest)
		return nil
	}
	return s.store.Put(r.Context(), id, r.URL.Query().Get("ID"), b)
}

func (s *StateServer) delete(w http.ResponseWriter, r *http.Request, id int64) error {
	return s.store.Delete(r.Context(), id, r.URL.Query().Get("ID"))
}

func lockID(r *http.Request) (string, string, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return "", "", err
	}
	var info struct{ ID string }
	if err := json.Unmarshal(b, &info); err != nil || info.ID == "" {
		return "", "", errors.New("lock info without an ID")
	}
	return info.ID, string(b), nil
}

func (s *StateServer) lock(w http.ResponseWriter, r *http.Request, id int64) error {
	lid, info, err := lockID(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil
	}
	return s.store.Lock(r.Context(), id, lid, info)
}

func (s *StateServer) unlock(w http.ResponseWriter, r *http.Request, id int64) error {
	lid, _, err := lockID(r)
	if err != nil {
		// force-unlock sends the ID only; without one, nothing to check.
		lid = ""
	}
	return s.store.Unlock(r.Context(), id, lid)
}
