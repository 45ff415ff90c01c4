package worker

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/myt-iot/myt/internal/hostile"
)

// TestHostileImport sends every hostile document to /v1/import, one NDJSON
// line per line of it: no line is stored, each is rejected by line number,
// quickly and in bounded memory. The sink is the in-memory fake: the
// parsing is what is under test.
func TestHostileImport(t *testing.T) {
	fs := &fakeSink{stored: map[string]int{}}
	w := New(DefaultConfig(), fs, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(w.HTTPHandler("tok"))
	defer srv.Close()
	hostile.Run(t, "worker POST /v1/import", func(t *testing.T, data []byte) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/import", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res importResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || res.Imported != 0 || len(res.Rejected) == 0 || len(res.Rejected) > MaxImportRejections {
			t.Errorf("import: %d, %d imported, %d rejected listed, %v", resp.StatusCode, res.Imported, len(res.Rejected), err)
		}
	})
	if len(fs.stored) != 0 {
		t.Errorf("stored %v", fs.stored)
	}
}
