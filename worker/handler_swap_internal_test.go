package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/worker/handler"
	"github.com/myt-iot/myt/worker/record"
)

// Concurrent PUT /v1/handler requests each load their own code: all
// succeed, the handler that runs afterwards is the one in handler.path,
// a restart reads that file, and no candidate file is left behind.
func TestPutHandlerConcurrent(t *testing.T) {
	_, err := exec.LookPath("python3")
	testenv.Need(t, "python3", err == nil, "install it with `apt-get install python3`")
	code := func(v int) string {
		// A slow import widens the window in which two swaps overlap.
		return fmt.Sprintf("import time\ntime.sleep(0.05)\nVER = %d\ndef process(m):\n    return {'ver': VER}\n", v)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "handler.py")
	if err := os.WriteFile(path, []byte(code(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := handler.New(context.Background(), handler.Options{Path: path, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cfg := DefaultConfig()
	cfg.Handler.Path = path
	w := New(cfg, nil, slog.New(slog.DiscardHandler))
	w.runner.Store(r)
	srv := httptest.NewServer(w.HTTPHandler("tok"))
	defer srv.Close()

	put := func(body string) (int, string) {
		req, _ := http.NewRequest("PUT", srv.URL+"/v1/handler", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Status
	}
	var wg sync.WaitGroup
	for v := 1; v <= 6; v++ {
		wg.Go(func() {
			if c, s := put(code(v)); c != http.StatusOK {
				t.Errorf("PUT version %d: %s", v, s)
			}
		})
	}
	wg.Wait()
	if c, _ := put("def process(:\n"); c != http.StatusUnprocessableEntity {
		t.Errorf("broken handler: %d, want 422", c)
	}
	ver := func() string {
		t.Helper()
		res, err := r.Process(context.Background(), []record.Input{{ID: "x", Payload: map[string]any{}}})
		if err != nil || res[0].Kind != handler.OK {
			t.Fatalf("process: %v %+v", err, res)
		}
		return string(res[0].Value.(map[string]any)["ver"].(json.Number))
	}
	running := ver()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != code(int(running[0]-'0')) || running == "0" {
		t.Errorf("running version %s, handler.path holds:\n%s", running, b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("handler.path mode %v, want 0644", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files beside handler.path: %v, want only handler.py", names)
	}
	// A restart (after a crash) reads handler.path: same version.
	if err := r.Swap(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	if v := ver(); v != running {
		t.Errorf("after reload from handler.path: version %s, want %s", v, running)
	}
}
