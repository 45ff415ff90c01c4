package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

// store is a real MyT database with one user and one platform.
type store struct {
	db       *sqlite.DB
	svc      *sqlite.Services
	path     string
	ctx      context.Context // the user's
	platform *myt.Platform
}

func newStore(t testing.TB, designYAML string) *store {
	t.Helper()
	return newStoreWith(t, designYAML, nil)
}

// newStoreWith runs setup (saving credentials, say) as the user before it
// creates the platform.
func newStoreWith(t testing.TB, designYAML string, setup func(*store) error) *store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "myt.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{ServerKey: vault.NewKey(), Params: vault.Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &store{db: db, svc: sqlite.NewServices(db), path: path}
	if _, err := s.svc.Users.CreateUser(context.Background(), myt.UserCreate{Username: "ada", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.svc.Users.Authenticate(context.Background(), "ada", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	s.ctx = myt.NewContextWithAuth(context.Background(), a)
	if setup != nil {
		if err := setup(s); err != nil {
			t.Fatal(err)
		}
	}
	d, err := design.Parse([]byte(designYAML))
	if err != nil {
		t.Fatal(err)
	}
	if s.platform, err = s.svc.Platforms.CreatePlatform(s.ctx, d); err != nil {
		t.Fatal(err)
	}
	return s
}

const localDesign = `apiVersion: myt/v1
kind: Platform
metadata: {name: statetest}
spec:
  target: {provider: local}
  database: {kind: timescaledb}
`

// TestStateBackend applies and destroys a module of terraform_data
// resources through the runner's http backend: the state lands sealed in
// the store (no tfstate file, no plaintext in the database file), the
// lock is held during the run and refuses a concurrent run, and a wrong
// credential is refused.
func TestStateBackend(t *testing.T) {
	tools := map[string]string{}
	for _, n := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(n); err == nil {
			tools[n] = p
		}
	}
	testenv.Need(t, "tofu or terraform", len(tools) > 0, "install OpenTofu or Terraform (CI machines have terraform preinstalled)")
	for name, path := range tools {
		t.Run(name, func(t *testing.T) { stateBackend(t, path) })
	}
}

func stateBackend(t *testing.T, tf string) {
	s := newStore(t, localDesign)
	states := sqlite.NewStateStore(s.db)
	srv, err := deploy.NewStateServer(states, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	access, revoke := srv.Grant(s.platform.ID)
	defer revoke()

	dir := t.TempDir()
	const marker = "myt-state-marker-4f1c"
	module := `resource "terraform_data" "a" {
  input = "` + marker + `"
  provisioner "local-exec" {
    command = "sleep 4"
  }
}
resource "terraform_data" "b" {
  input = terraform_data.a.output
}
`
	for name, body := range map[string]string{"main.tf": module, "myt_backend_override.tf": "terraform {\n  backend \"http\" {}\n}\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_DATA_DIR="+filepath.Join(dir, ".tfdata"),
		"TF_CLI_CONFIG_FILE="+filepath.Join(dir, "none.tfrc"),
		"TF_HTTP_ADDRESS="+access.URL, "TF_HTTP_LOCK_ADDRESS="+access.URL, "TF_HTTP_UNLOCK_ADDRESS="+access.URL,
		"TF_HTTP_USERNAME="+access.Username, "TF_HTTP_PASSWORD="+access.Password)
	run := func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, tf, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := run(ctx, "init", "-input=false", "-no-color"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}

	applied := make(chan error, 1)
	var applyOut string
	go func() {
		var err error
		applyOut, err = run(ctx, "apply", "-auto-approve", "-input=false", "-no-color")
		applied <- err
	}()
	// While the apply sleeps in its provisioner, the lock is held and a
	// second run is refused.
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := states.Locked(ctx, s.platform.ID)
		if err != nil {
			t.Fatal(err)
		}
		if info != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the apply never took the state lock")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := run(ctx, "plan", "-lock-timeout=0s", "-input=false", "-no-color")
	if err == nil || !strings.Contains(out, "lock") {
		t.Errorf("a concurrent plan was not refused by the lock: %v\n%s", err, out)
	}
	if err := <-applied; err != nil {
		t.Fatalf("apply: %v\n%s", err, applyOut)
	}
	if info, _ := states.Locked(ctx, s.platform.ID); info != "" {
		t.Errorf("the lock outlived the apply: %s", info)
	}

	st, err := states.Get(ctx, s.platform.ID)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources []struct{ Type, Name string } `json:"resources"`
	}
	if err := json.Unmarshal(st, &doc); err != nil || len(doc.Resources) != 2 || !bytes.Contains(st, []byte(marker)) {
		t.Fatalf("stored state (%v): %s", err, st)
	}
	if _, err := os.Stat(filepath.Join(dir, "terraform.tfstate")); err == nil {
		t.Error("a terraform.tfstate file was left on disk")
	}
	for _, f := range []string{s.path, s.path + "-wal"} {
		raw, _ := os.ReadFile(f)
		if bytes.Contains(raw, []byte(marker)) {
			t.Errorf("%s holds the state in plaintext", filepath.Base(f))
		}
	}
	if out, err := run(ctx, "destroy", "-auto-approve", "-input=false", "-no-color"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	if st, err = states.Get(ctx, s.platform.ID); err != nil || json.Unmarshal(st, &doc) != nil || len(doc.Resources) != 0 {
		t.Errorf("state after destroy (%v): %s", err, st)
	}
	t.Run("wrong credential", func(t *testing.T) {
		req, _ := http.NewRequest("GET", access.URL, nil)
		req.SetBasicAuth(access.Username, "not-the-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
		other, revokeOther := srv.Grant(s.platform.ID + 1)
		defer revokeOther()
		req, _ = http.NewRequest("GET", access.URL, nil)
		req.SetBasicAuth(other.Username, other.Password)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("another platform's credential: status %d, want 401", resp.StatusCode)
		}
	})
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log output to the test's log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
