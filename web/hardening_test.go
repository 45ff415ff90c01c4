package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/myt-iot/myt/internal/hostile"
)

// TestHostileImport pastes every hostile document into the import form:
// each is refused with the form shown again, quickly and in bounded memory.
func TestHostileImport(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/platforms/import")
	hostile.Run(t, "web POST /platforms/import", func(t *testing.T, data []byte) {
		r := c.post("/platforms/import", url.Values{"document": {string(data)}})
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("import: %d, want 422 with the form", r.status)
		}
	})
}

// TestOversizedFormIs413: a form over the limit is answered 413.
func TestOversizedFormIs413(t *testing.T) {
	e := newEnv(t, false)
	c := e.setup()
	c.get("/platforms/import")
	r := c.post("/platforms/import", url.Values{"document": {strings.Repeat("x", 3<<20)}})
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "larger than 2 MB") {
		t.Errorf("3 MB form: %d, want 413 saying so", r.status)
	}
}
