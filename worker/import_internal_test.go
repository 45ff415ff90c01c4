package worker

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myt-iot/myt/worker/record"
)

// An imported id longer than MaxIDLen is capped like a message id (MySQL
// stores at most 128 characters), the same way every time (idempotent).
func TestImportCapsIDs(t *testing.T) {
	fs := &fakeSink{stored: map[string]int{}}
	w := New(DefaultConfig(), fs, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(w.HTTPHandler("tok"))
	defer srv.Close()
	long := strings.Repeat("x", 300)
	body := `{"id":"` + long + `","device":"d","ts":1751328000,"fields":{"a":1}}` + "\n" +
		"  \t \n" +
		`{"id":"short","device":"d","ts":1751328000}` + "\n"
	for range 2 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/import", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res importResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || res.Imported != 2 || len(res.Rejected) != 0 {
			t.Fatalf("import: %d %+v %v", resp.StatusCode, res, err)
		}
	}
	capped := record.CapID(long)
	if len(capped) > record.MaxIDLen || capped == long {
		t.Fatalf("CapID gave %q", capped)
	}
	if len(fs.stored) != 2 || fs.stored[capped] != 2 || fs.stored["short"] != 2 {
		t.Errorf("sink got %v, want %s and short twice each", fs.stored, capped)
	}
}
