package worker

import (
	"log/slog"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/worker/source"
)

// Only a message published straight to the ingest queue through the
// default exchange (which devices cannot do) is taken as a replay and
// gets the routing key of its header; the same headers on a device's
// message through amq.topic change nothing.
func TestReplayedTrust(t *testing.T) {
	w := New(DefaultConfig(), &fakeSink{stored: map[string]int{}}, slog.New(slog.DiscardHandler))
	h := amqp.Table{source.HeaderRoutingKey: "myt.victim.env", source.HeaderReplayed: int64(1)}
	for _, c := range []struct {
		name     string
		d        amqp.Delivery
		replayed bool
	}{
		{"replay", amqp.Delivery{Exchange: "", RoutingKey: "myt.ingest", Headers: h}, true},
		{"device through amq.topic", amqp.Delivery{Exchange: "amq.topic", RoutingKey: "myt.ingest", Headers: h}, false},
		{"default exchange, other queue", amqp.Delivery{Exchange: "", RoutingKey: "myt.other", Headers: h}, false},
		{"no replay count", amqp.Delivery{Exchange: "", RoutingKey: "myt.ingest", Headers: amqp.Table{source.HeaderRoutingKey: "myt.a.b"}}, false},
	} {
		if got := w.replayed(&c.d); got != c.replayed {
			t.Errorf("%s: replayed %v, want %v", c.name, got, c.replayed)
		}
	}
}

// A long UTF-8 body is cut at a character boundary at most DeadBodyMax
// bytes in; a body that is not UTF-8 is base64.
func TestDeadLetterBody(t *testing.T) {
	w := New(DefaultConfig(), &fakeSink{stored: map[string]int{}}, slog.New(slog.DiscardHandler))
	long := "a" + strings.Repeat("€", DeadBodyMax) // 3-byte characters, shifted by one
	d := w.deadLetter(&amqp.Delivery{RoutingKey: "myt.dead", Body: []byte(long),
		Headers: amqp.Table{source.HeaderRoutingKey: "myt.dev-1.env", source.HeaderReason: ReasonHandlerError}})
	if !d.Truncated || d.Size != len(long) || len(d.Body) > DeadBodyMax || len(d.Body) < DeadBodyMax-2 || !strings.HasPrefix(long, d.Body) {
		t.Errorf("long body: truncated %v, size %d, %d bytes kept", d.Truncated, d.Size, len(d.Body))
	}
	if d.Device != "dev-1" || d.RoutingKey != "myt.dev-1.env" || d.Reason != ReasonHandlerError {
		t.Errorf("dead letter %+v", d)
	}
	b := w.deadLetter(&amqp.Delivery{Body: []byte{0xff, 'a'}})
	if b.Encoding != "base64" || b.Body != "/2E=" || b.Truncated {
		t.Errorf("binary body: %+v", b)
	}
}
