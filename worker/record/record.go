// Package record is the worker's unit of data: one stored row, point or
// document, with its identity and time, and the rules that derive them
// from a broker message.
package record

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Record is one stored row. Fields hold JSON values: string, bool, nil,
// json.Number (numbers keep their exact text), []any and map[string]any.
type Record struct {
	ID     string         `json:"id"`
	Device string         `json:"device"`
	Topic  string         `json:"topic"`
	TS     time.Time      `json:"ts"`
	Fields map[string]any `json:"fields"`
	// Redelivered is true when the record may have been stored before: the
	// broker redelivered its message, or the worker writes it again after a
	// failed write (a sink then guards against a second row even where its
	// unique key cannot be the id alone).
	Redelivered bool `json:"-"`
}

// Message is what the broker handed over, reduced to what a record needs.
type Message struct {
	RoutingKey string
	MessageID  string
	// Timestamp is the AMQP timestamp property (zero when absent).
	Timestamp time.Time
	// HeaderTS is a broker-set receive time (RabbitMQ's timestamp_in_ms
	// header, when its interceptor is enabled); zero when absent.
	HeaderTS    time.Time
	Body        []byte
	Received    time.Time
	Redelivered bool
}

// Input is the message given to the user's handler (and, without one, the
// source of the record).
type Input struct {
	ID      string    `json:"id"`
	Device  string    `json:"device"`
	Topic   string    `json:"topic"`
	Stream  string    `json:"stream"`
	TS      time.Time `json:"ts"`
	Payload any       `json:"payload"`
	// TSFromPayload is true when TS came from the payload itself.
	TSFromPayload bool `json:"-"`
	Redelivered   bool `json:"-"`
}

// ErrInvalidJSON is returned for a body that is not one JSON value.
var ErrInvalidJSON = errors.New("invalid JSON")

// MaxIDLen is the longest id kept as is; longer ids are replaced by their
// hash so that every sink can index them.
const MaxIDLen = 100

// TSKeys are the payload keys read, in order, for the record time.
var TSKeys = []string{"ts", "time", "timestamp"}

// Decode parses a broker message into the handler input. prefix is the
// topic prefix (first routing-key word); device and stream are the next
// words. It fails with ErrInvalidJSON (wrapped) for a body that is not JSON.
func Decode(m Message, prefix string) (Input, error) {
	in := Input{Redelivered: m.Redelivered}
	in.Topic, in.Device, in.Stream = SplitRoutingKey(m.RoutingKey, prefix)
	v, err := DecodeJSON(m.Body)
	if err != nil {
		return in, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	in.Payload = v
	in.ID = MessageID(m)
	if obj, ok := in.Payload.(map[string]any); ok {
		for _, k := range TSKeys {
			if v, ok := obj[k]; ok {
				if ts, err := ParseTS(v); err == nil {
					in.TS, in.TSFromPayload = ts, true
				}
				break
			}
		}
	}
	if in.TS.IsZero() {
		switch {
		case !m.Timestamp.IsZero():
			in.TS = m.Timestamp
		case !m.HeaderTS.IsZero():
			in.TS = m.HeaderTS
		default:
			in.TS = m.Received
		}
	}
	in.TS = in.TS.UTC()
	return in, nil
}

// MessageID is the message-id property when the publisher set one, else a
// hash of routing key and body (so a redelivery, or an MQTT QoS 1 resend,
// gets the same id).
func MessageID(m Message) string {
	if m.MessageID != "" {
		return CapID(m.MessageID)
	}
	h := sha256.New()
	h.Write([]byte(m.RoutingKey))
	h.Write([]byte{0})
	h.Write(m.Body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// CapID returns id, or "h:" and its hash when it is longer than MaxIDLen,
// so that every sink can store and index it (MySQL's id is VARCHAR(128)).
func CapID(id string) string {
	if len(id) <= MaxIDLen {
		return id
	}
	s := sha256.Sum256([]byte(id))
	return "h:" + hex.EncodeToString(s[:16])
}

// SplitRoutingKey turns an AMQP routing key "<prefix>.<device>.<stream...>"
// into the MQTT-style topic "<prefix>/<device>/<stream...>", the device and
// the stream. RabbitMQ's MQTT plugin maps MQTT '/' to '.' in routing keys.
// A key without the prefix gives its first word as device.
func SplitRoutingKey(rk, prefix string) (topic, device, stream string) {
	words := strings.Split(rk, ".")
	topic = strings.Join(words, "/")
	if len(words) > 0 && words[0] == prefix {
		words = words[1:]
	}
	if len(words) > 0 {
		device = words[0]
		stream = strings.Join(words[1:], "/")
	}
	return topic, device, stream
}

// Passthrough makes the record stored when no handler is configured: the
// payload object minus its time key; a non-object payload is stored as
// {"value": payload}. Like FromHandler, it takes the payload object as the
// record's fields (no copy): in.Payload loses its time key.
func Passthrough(in Input) Record {
	r := Record{ID: in.ID, Device: in.Device, Topic: in.Topic, TS: in.TS, Redelivered: in.Redelivered}
	if obj, ok := in.Payload.(map[string]any); ok {
		r.Fields = obj
		if in.TSFromPayload {
			for _, k := range TSKeys {
				if _, ok := obj[k]; ok {
					delete(obj, k)
					break
				}
			}
		}
	} else {
		r.Fields = map[string]any{"value": in.Payload}
	}
	return r
}

// FromHandler builds records from a handler's result for in: a JSON object
// gives one record, an array fans out (the i-th record, i >= 1, gets id
// "<id>#<i>"), null gives none. A result may set "ts" (same rules as the
// payload) and "device"; the rest are the fields.
func FromHandler(in Input, result any) ([]Record, error) {
	switch v := result.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		r, err := fromObject(in, in.ID, v)
		if err != nil {
			return nil, err
		}
		return []Record{r}, nil
	case []any:
		out := make([]Record, 0, len(v))
		for i, e := range v {
			obj, ok := e.(map[string]any)
			if !ok {
				if e == nil {
					continue
				}
				return nil, fmt.Errorf("handler result [%d] is %T, want a dict", i, e)
			}
			id := in.ID
			if i > 0 {
				id = CapID(in.ID + "#" + strconv.Itoa(i))
			}
			r, err := fromObject(in, id, obj)
			if err != nil {
				return nil, fmt.Errorf("handler result [%d]: %w", i, err)
			}
			out = append(out, r)
		}
		return out, nil
	}
	return nil, fmt.Errorf("handler returned %T, want a dict, a list of dicts or None", result)
}

func fromObject(in Input, id string, obj map[string]any) (Record, error) {
	r := Record{ID: id, Device: in.Device, Topic: in.Topic, TS: in.TS, Fields: obj, Redelivered: in.Redelivered}
	if v, ok := obj["ts"]; ok {
		ts, err := ParseTS(v)
		if err != nil {
			return r, fmt.Errorf("ts: %w", err)
		}
		r.TS = ts.UTC()
		delete(obj, "ts")
	}
	if v, ok := obj["device"]; ok {
		s, ok := v.(string)
		if !ok || s == "" {
			return r, errors.New("device must be a non-empty string")
		}
		r.Device = s
		delete(obj, "device")
	}
	return r, nil
}

// Epoch magnitude limits used by ParseTS: a number below 1e11 is seconds,
// below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
// Seconds so cover 1970..5138; milliseconds from 1973-03-03 on.
const (
	maxSeconds = 1e11
	maxMillis  = 1e14
	maxMicros  = 1e17
)

// ParseTS reads a timestamp: an RFC 3339 string (fraction and offset
// optional), or an epoch number (or numeric string) whose unit is told by
// its magnitude (see maxSeconds and friends; seconds may have a fraction).
func ParseTS(v any) (time.Time, error) {
	switch x := v.(type) {
	case json.Number:
		return parseEpoch(string(x))
	case float64:
		return parseEpoch(strconv.FormatFloat(x, 'f', -1, 64))
	case int64:
		return parseEpoch(strconv.FormatInt(x, 10))
	case int:
		return parseEpoch(strconv.Itoa(x))
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t, nil
		}
		if _, err := strconv.ParseFloat(x, 64); err == nil {
			return parseEpoch(x)
		}
		return time.Time{}, fmt.Errorf("timestamp %q is neither RFC 3339 nor an epoch number", x)
	case time.Time:
		return x, nil
	}
	return time.Time{}, fmt.Errorf("timestamp of type %T", v)
}

func parseEpoch(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		a := n
		if a < 0 {
			a = -a
		}
		switch {
		case a < maxSeconds:
			return time.Unix(n, 0).UTC(), nil
		case a < maxMillis:
			return time.UnixMilli(n).UTC(), nil
		case a < maxMicros:
			return time.UnixMicro(n).UTC(), nil
		default:
			return time.Unix(0, n).UTC(), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("epoch %q is not a number", s)
	}
	a := math.Abs(f)
	var ns float64
	switch {
	case a < maxSeconds:
		// Keep microsecond precision of fractional seconds exact.
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC(), nil
	case a < maxMillis:
		ns = f * 1e6
	case a < maxMicros:
		ns = f * 1e3
	default:
		ns = f
	}
	if math.Abs(ns) > math.MaxInt64 {
		return time.Time{}, fmt.Errorf("epoch %q out of range", s)
	}
	return time.Unix(0, int64(ns)).UTC(), nil
}
