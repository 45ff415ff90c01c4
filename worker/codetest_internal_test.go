package worker

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/myt-iot/myt/internal/testenv"
)

// TestHandlerTestEndpoint: POST /v1/handler/test runs posted code on
// samples in a runner of its own and says, per sample, what would be
// stored or why it would be dead-lettered; the running handler is not
// touched; code that does not load is a 422; the export-only token and no
// token are refused.
func TestHandlerTestEndpoint(t *testing.T) {
	_, err := exec.LookPath("python3")
	testenv.Need(t, "python3", err == nil, "install it with `apt-get install python3`")
	w := New(DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(w.HTTPHandler("tok"))
	defer srv.Close()
	post := func(token string, body HandlerTestRequest) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.URL+"/v1/handler/test", strings.NewReader(string(b)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, sb.String()
	}
	const code = "def process(msg):\n    p = msg['payload']\n    if p.get('skip'):\n        return None\n    return {'t': p['t'] * 2}\n"
	status, body := post("tok", HandlerTestRequest{Code: code, Samples: "{\"t\": 2}\n# a comment\n{\"skip\": true}\n{\"x\": 1}\nnot json\n{\"topic\": \"myt/dev9/env\", \"payload\": {\"t\": 5}}\n"})
	if status != 200 {
		t.Fatalf("test: %d %s", status, body)
	}
	var resp HandlerTestResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 5 || resp.Failed != 2 {
		t.Fatalf("results: %s", body)
	}
	r := resp.Results
	if r[0].Line != 1 || len(r[0].Records) != 1 || r[0].Records[0].Fields["t"] != json.Number("4") && r[0].Records[0].Fields["t"] != float64(4) {
		t.Errorf("sample 1: %+v", r[0])
	}
	if r[1].Line != 3 || !r[1].Dropped {
		t.Errorf("sample 3 (skip): %+v", r[1])
	}
	if r[2].Reason != ReasonHandlerError || !strings.Contains(r[2].Error, "KeyError") {
		t.Errorf("sample 4 (no t): %+v", r[2])
	}
	if r[3].Reason != ReasonInvalidJSON {
		t.Errorf("sample 5 (not json): %+v", r[3])
	}
	if len(r[4].Records) != 1 || r[4].Records[0].Device != "dev9" {
		t.Errorf("sample 6 (a message on another topic): %+v", r[4])
	}
	if w.Handler() != nil {
		t.Error("trying code installed a handler")
	}
	if status, body := post("tok", HandlerTestRequest{Code: "def process(msg):\n    return (\n", Samples: "{}\n"}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "SyntaxError") {
		t.Errorf("code that does not load: %d %s", status, body)
	}
	if status, _ := post("", HandlerTestRequest{Code: code, Samples: "{}\n"}); status != http.StatusUnauthorized {
		t.Errorf("no token: %d", status)
	}
	if status, body := post("tok", HandlerTestRequest{Code: code}); status != http.StatusBadRequest || !strings.Contains(body, "samples") {
		t.Errorf("no samples: %d %s", status, body)
	}
}
