package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/myt-iot/myt/worker/handler"
	"github.com/myt-iot/myt/worker/record"
)

// Trying a handler on samples, as the worker would run it: `myt code
// test` runs it on the user's machine, and POST /v1/handler/test in the
// platform's worker, where the user's code runs anyway (MyT's server
// never runs it).

// Sample is one message to try a handler on.
type Sample struct {
	// Line is where it came from (a line of the samples, a dead letter's
	// place in myt.dead), for the results.
	Line int
	Msg  record.Message
}

// TestResult is what a handler made of one sample: the records it would
// store, or why it would be dead-lettered.
type TestResult struct {
	Line    int             `json:"line"`
	Records []record.Record `json:"records,omitempty"`
	Dropped bool            `json:"dropped,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// Failed reports whether the sample would be dead-lettered.
func (r TestResult) Failed() bool { return r.Reason != "" }

// ParseSamples reads NDJSON samples: each line a bare payload, sent on
// topic, or a message {"topic": ..., "payload": ..., "id": ...}. Blank
// lines and # comments are skipped. A line that is not JSON is a sample
// too (the handler never sees it: invalid-json).
func ParseSamples(b []byte, topic string) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		m := record.Message{RoutingKey: strings.ReplaceAll(topic, "/", "."), Body: append([]byte(nil), line...), Received: time.Now()}
		var msg struct {
			Topic   string          `json:"topic"`
			ID      string          `json:"id"`
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(line, &msg) == nil && msg.Payload != nil {
			m.Body = msg.Payload
			m.MessageID = msg.ID
			if msg.Topic != "" {
				m.RoutingKey = strings.ReplaceAll(msg.Topic, "/", ".")
			}
		}
		out = append(out, Sample{Line: n, Msg: m})
	}
	return out, sc.Err()
}

// TestHandler runs r on samples with the worker's record rules; prefix
// is the topic prefix (Config.TopicPrefix).
func TestHandler(ctx context.Context, r *handler.Runner, samples []Sample, prefix string) ([]TestResult, error) {
	results := make([]TestResult, len(samples))
	var ins []record.Input
	var at []int
	for i, s := range samples {
		results[i].Line = s.Line
		in, err := record.Decode(s.Msg, prefix)
		if err != nil {
			results[i].Reason, results[i].Error = ReasonInvalidJSON, err.Error()
			continue
		}
		ins = append(ins, in)
		at = append(at, i)
	}
	if len(ins) == 0 {
		return results, nil
	}
	res, err := r.Process(ctx, ins)
	if err != nil {
		return nil, err
	}
	for j, x := range res {
		rr := &results[at[j]]
		if x.Kind != handler.OK || x.Err != "" {
			rr.Reason, rr.Error = HandlerReason(x.Kind), x.Err
			continue
		}
		recs, err := record.FromHandler(ins[j], x.Value)
		if err != nil {
			rr.Reason, rr.Error = ReasonHandlerResult, err.Error()
			continue
		}
		rr.Records, rr.Dropped = recs, len(recs) == 0
	}
	return results, nil
}

// Limits of POST /v1/handler/test.
const (
	maxTestSamples = 200
	testDeadline   = 30 * time.Second
)

// HandlerTestRequest is the body of POST /v1/handler/test.
type HandlerTestRequest struct {
	// Code is the handler to try (it is not swapped in).
	Code string `json:"code"`
	// Samples are NDJSON lines, as `myt code test` reads them.
	Samples string `json:"samples,omitempty"`
	// Topic is the topic of bare-payload samples (default
	// <prefix>/sample/test).
	Topic string `json:"topic,omitempty"`
}

// HandlerTestResponse is its answer.
type HandlerTestResponse struct {
	Results []TestResult `json:"results"`
	Failed  int          `json:"failed"`
}

// serveHandlerTest loads the posted code in a runner of its own (the
// running handler is not touched) and runs it on the samples.
func (w *Worker) serveHandlerTest(rw http.ResponseWriter, r *http.Request) {
	var req HandlerTestRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&req); err != nil {
		http.Error(rw, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if strings.TrimSpace(req.Code) == "" {
		http.Error(rw, "code: empty", http.StatusBadRequest)
		return
	}
	topic := req.Topic
	if topic == "" {
		topic = w.cfg.TopicPrefix + "/sample/test"
	}
	samples, err := ParseSamples([]byte(req.Samples), topic)
	if err != nil {
		http.Error(rw, "samples: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(samples) == 0 {
		http.Error(rw, "samples: none (one JSON message per line)", http.StatusBadRequest)
		return
	}
	if len(samples) > maxTestSamples {
		http.Error(rw, fmt.Sprintf("samples: %d given, at most %d", len(samples), maxTestSamples), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), testDeadline)
	defer cancel()
	dir, err := os.MkdirTemp("", "myt-handler-test-")
	if err != nil {
		http.Error(rw, "cannot write the handler file", http.StatusInternalServerError)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "handler.py")
	if err := os.WriteFile(path, []byte(req.Code), 0o600); err != nil {
		http.Error(rw, "cannot write the handler file", http.StatusInternalServerError)
		return
	}
	hr, err := handler.New(ctx, handler.Options{Path: path, Python: w.cfg.Handler.Python, Timeout: w.cfg.Handler.Timeout.D(), Log: w.log.With("handler", "test")})
	if err != nil {
		http.Error(rw, "handler rejected: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	defer hr.Close()
	results, err := TestHandler(ctx, hr, samples, w.cfg.TopicPrefix)
	if err != nil {
		http.Error(rw, "handler: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	resp := HandlerTestResponse{Results: results}
	for _, x := range results {
		if x.Failed() {
			resp.Failed++
		}
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(resp)
}
