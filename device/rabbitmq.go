package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Tag marks the broker users that are MyT devices, so that a re-apply
// can delete one MyT no longer has (RabbitMQ keeps unknown tags and
// gives them no rights).
const Tag = "myt-device"

// HashingAlgorithm is the password hash RabbitMQ is given.
const HashingAlgorithm = "rabbit_password_hashing_sha256"

// Hash is RabbitMQ's rabbit_password_hashing_sha256 of password with a
// fresh 4-byte salt: base64(salt || SHA-256(salt || password)). The
// password is 192 random bits, so a fast salted hash suffices: there is
// nothing to guess.
func Hash(password string) string {
	salt := make([]byte, 4)
	rand.Read(salt)
	h := sha256.Sum256(append(salt[:4:4], password...))
	return base64.StdEncoding.EncodeToString(append(salt, h[:]...))
}

// newPassword is 24 random bytes, URL-safe base64 (32 characters, no
// character a shell or a CSV file needs to quote).
func newPassword() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Management is a RabbitMQ management API client for one vhost, as the
// administrator.
type Management struct {
	Client   *http.Client
	URL      string // http://127.0.0.1:15672
	User     string
	Password string
	// VHost, Exchange and Prefix: the vhost devices use, the topic
	// exchange MQTT publishes to, and the first topic level.
	VHost, Exchange, Prefix string
}

// Permissions are a device user's vhost permissions: what RabbitMQ's
// MQTT plugin needs to publish (write on the exchange) and to subscribe
// (declare, bind and read its own mqtt-subscription-<client id> queue,
// read the exchange). No other queue or exchange: a device cannot read
// the ingest queue or publish around the topic exchange. Which topics
// it may use is the topic permission (TopicPattern).
func (m *Management) Permissions() map[string]string {
	ex := regexp.QuoteMeta(m.Exchange)
	return map[string]string{
		"configure": "^mqtt-subscription-.*",
		"write":     "^(" + ex + "|mqtt-subscription-.*)$",
		"read":      "^(" + ex + "|mqtt-subscription-.*)$",
	}
}

// TopicPattern is the routing keys device may publish with and bind to:
// MQTT topic "<prefix>/<device>" and everything under it.
func (m *Management) TopicPattern(device string) string {
	return "^" + regexp.QuoteMeta(m.Prefix+"."+device) + `(\..*)?$`
}

// ApplyDevice creates or updates the device's user (with the password
// hash, tagged Tag), its vhost permissions and its topic permissions.
func (m *Management) ApplyDevice(ctx context.Context, name, hash string) error {
	if err := m.do(ctx, http.MethodPut, "/api/users/"+url.PathEscape(name),
		map[string]any{"password_hash": hash, "hashing_algorithm": HashingAlgorithm, "tags": Tag}, nil); err != nil {
		return err
	}
	if err := m.do(ctx, http.MethodPut, "/api/permissions/"+url.PathEscape(m.VHost)+"/"+url.PathEscape(name), m.Permissions(), nil); err != nil {
		return err
	}
	p := m.TopicPattern(name)
	return m.do(ctx, http.MethodPut, "/api/topic-permissions/"+url.PathEscape(m.VHost)+"/"+url.PathEscape(name),
		map[string]string{"exchange": m.Exchange, "write": p, "read": p}, nil)
}

// RemoveDevice deletes the device's user (its permissions go with it)
// and closes every connection it has open; a user already gone is no
// error. Deleting a user does not close its connections in every
// RabbitMQ version, and an open connection keeps its rights.
func (m *Management) RemoveDevice(ctx context.Context, name string) error {
	if err := m.do(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(name), nil, nil); err != nil && !isNotFound(err) {
		return err
	}
	conns, err := m.Connections(ctx)
	if err != nil {
		return err
	}
	for _, c := range conns {
		if c.User != name {
			continue
		}
		if err := m.do(ctx, http.MethodDelete, "/api/connections/"+url.PathEscape(c.Name), nil, nil, "X-Reason", "device credential revoked"); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// User is a broker user as the API lists it.
type User struct {
	Name string `json:"name"`
	Tags tags   `json:"tags"`
}

// tags reads both forms RabbitMQ uses: "a,b" (before 3.12) and ["a","b"].
type tags []string

func (t *tags) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*t = nil
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				*t = append(*t, x)
			}
		}
		return nil
	}
	var l []string
	err := json.Unmarshal(b, &l)
	*t = l
	return err
}

// DeviceUsers lists the broker users tagged Tag.
func (m *Management) DeviceUsers(ctx context.Context) ([]string, error) {
	var us []User
	if err := m.do(ctx, http.MethodGet, "/api/users", nil, &us); err != nil {
		return nil, err
	}
	var out []string
	for _, u := range us {
		for _, t := range u.Tags {
			if t == Tag {
				out = append(out, u.Name)
			}
		}
	}
	return out, nil
}

// Connection is an open client connection.
type Connection struct {
	Name string `json:"name"`
	User string `json:"user"`
}

// Connections lists the open connections.
func (m *Management) Connections(ctx context.Context) ([]Connection, error) {
	var cs []Connection
	err := m.do(ctx, http.MethodGet, "/api/connections?columns=name,user", nil, &cs)
	return cs, err
}

// channel is an open channel and its statistics: an object with the
// publish count, or [] (RabbitMQ's empty Erlang list) when it has none.
type channel struct {
	User         string          `json:"user"`
	MessageStats json.RawMessage `json:"message_stats"`
}

func (c channel) published() int64 {
	var st struct {
		Publish int64 `json:"publish"`
	}
	if json.Unmarshal(c.MessageStats, &st) != nil {
		return 0
	}
	return st.Publish
}

// Activity says, per user with a connection open, how many messages its
// open channels published (the management plugin's statistics, updated
// every 5 s by default).
func (m *Management) Activity(ctx context.Context) (map[string]int64, error) {
	conns, err := m.Connections(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, c := range conns {
		out[c.User] += 0
	}
	var chs []channel
	if err := m.do(ctx, http.MethodGet, "/api/channels?columns=user,message_stats.publish", nil, &chs); err != nil {
		return nil, err
	}
	for _, ch := range chs {
		if _, ok := out[ch.User]; ok {
			out[ch.User] += ch.published()
		}
	}
	return out, nil
}

// apiError is a management API answer that is not 2xx.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("rabbitmq management %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

func isNotFound(err error) bool {
	e, ok := err.(*apiError)
	return ok && e.Status == http.StatusNotFound
}

func (m *Management) do(ctx context.Context, method, path string, in, out any, header ...string) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.URL+path, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(m.User, m.Password)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := m.Client.Do(req)
	if err != nil {
		return fmt.Errorf("rabbitmq management %s %s: %w", method, strings.SplitN(path, "?", 2)[0], err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return &apiError{Method: method, Path: strings.SplitN(path, "?", 2)[0], Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out)
}
