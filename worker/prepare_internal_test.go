package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/worker/handler"
)

// Every way a handler can fail gives its documented dead-letter reason.
func TestPrepareHandlerReasons(t *testing.T) {
	_, err := exec.LookPath("python3")
	testenv.Need(t, "python3", err == nil, "install it with `apt-get install python3`")
	code := `import os, time
def process(m):
    k = m["payload"]["k"]
    if k == "raise": raise ValueError("no")
    if k == "hang": time.sleep(60)
    if k == "die": os._exit(3)
    if k == "surrogate": return {"x": "\ud800"}
    if k == "scalar": return 5
    return {"k": k}
`
	path := filepath.Join(t.TempDir(), "handler.py")
	if err := os.WriteFile(path, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := handler.New(context.Background(), handler.Options{Path: path, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w := New(DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	w.runner.Store(r)
	want := map[string]string{
		"ok": "", "raise": ReasonHandlerError, "hang": ReasonHandlerTimeout, "die": ReasonHandlerCrash,
		"surrogate": ReasonHandlerResult, "scalar": ReasonHandlerResult,
	}
	keys := []string{"ok", "raise", "hang", "ok", "die", "surrogate", "scalar", "ok"}
	var batch []amqp.Delivery
	for i, k := range keys {
		batch = append(batch, amqp.Delivery{RoutingKey: "myt.dev.s", MessageId: k + string(rune('0'+i)),
			Body: []byte(`{"k":"` + k + `"}`), DeliveryTag: uint64(i + 1)})
	}
	p, err := w.prepare(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		got := ""
		if d := p.items[i].dead; d != nil {
			got = d.Reason
		}
		if got != want[k] {
			t.Errorf("%s: reason %q, want %q", k, got, want[k])
		}
	}
	if len(p.recs) != 3 {
		t.Errorf("%d records, want 3", len(p.recs))
	}
}

// Messages without a time of their own get distinct, increasing receive
// times, within a batch and across batches: InfluxDB keys a point by
// series and time, so equal times would store one point for many.
func TestPrepareStampsDistinctTimes(t *testing.T) {
	w := New(DefaultConfig(), nil, slog.New(slog.DiscardHandler))
	var last time.Time
	seen := map[time.Time]bool{}
	for b := 0; b < 3; b++ {
		var batch []amqp.Delivery
		for i := 0; i < 500; i++ {
			body := fmt.Sprintf(`{"temperature": %d.5}`, b*1000+i)
			batch = append(batch, amqp.Delivery{RoutingKey: "myt.dev-1.data", Body: []byte(body), DeliveryTag: uint64(i + 1)})
		}
		p, err := w.prepare(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.recs) != 500 {
			t.Fatalf("%d records, want 500", len(p.recs))
		}
		for _, r := range p.recs {
			if seen[r.TS] || !r.TS.After(last) {
				t.Fatalf("batch %d: time %v repeats or goes back (after %v)", b, r.TS, last)
			}
			seen[r.TS], last = true, r.TS
		}
	}
}
