package device_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/device"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/render"
)

// broker is a real RabbitMQ set up as a platform's is: vhost myt, MQTT
// on it, the administrator myt-admin.
type broker struct {
	mq       *testenv.RabbitMQ
	adminPw  string
	mgmtPort int
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	e := testenv.Require(t)
	mq := e.RabbitMQ(t)
	b := &broker{mq: mq, adminPw: "admin-" + strconv.FormatInt(time.Now().UnixNano(), 36), mgmtPort: mq.HostPort(15672)}
	b.api(t, mq.User, mq.Password, "PUT", "/api/vhosts/myt", map[string]any{})
	// MQTT clients on this broker's port land in vhost myt, as the
	// platform's rabbitmq.conf (mqtt.vhost) has it.
	b.api(t, mq.User, mq.Password, "PUT", "/api/global-parameters/mqtt_port_to_vhost_mapping",
		map[string]any{"name": "mqtt_port_to_vhost_mapping", "value": map[string]string{"1883": render.VHost}})
	b.api(t, mq.User, mq.Password, "PUT", "/api/permissions/myt/"+mq.User, map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	b.api(t, mq.User, mq.Password, "PUT", "/api/users/myt-admin", map[string]any{"password": b.adminPw, "tags": "administrator"})
	b.api(t, mq.User, mq.Password, "PUT", "/api/permissions/myt/myt-admin", map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	return b
}

func (b *broker) api(t *testing.T, user, pw, method, path string, body any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, b.mq.ManagementURL+path, rd)
	req.SetBasicAuth(user, pw)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != 404 {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	return resp.StatusCode
}

// dialer maps the platform host's management port to the container's.
type dialer struct{ b *broker }

func (d dialer) DialPlatform(ctx context.Context, p *myt.Platform) (device.DialFunc, func(), error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != "127.0.0.1:"+strconv.Itoa(render.ManagementPort) {
			return nil, fmt.Errorf("dial %s: not a port the platform publishes", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(d.b.mgmtPort))
	}, func() {}, nil
}

type secrets map[string]string

func (s secrets) Get(ctx context.Context, id int64, name string) ([]byte, error) {
	v, ok := s[name]
	if !ok {
		return nil, myt.Errorf(myt.ENOTFOUND, "no secret")
	}
	return []byte(v), nil
}

// platforms is the principal's platforms: user 1 owns platform 7.
type platforms struct {
	myt.PlatformService
	p *myt.Platform
}

func (ps platforms) FindPlatformByID(ctx context.Context, id int64) (*myt.Platform, error) {
	a := myt.AuthFromContext(ctx)
	if a == nil || a.User == nil || a.User.ID != ps.p.UserID || id != ps.p.ID {
		return nil, myt.Errorf(myt.ENOTFOUND, "Platform not found.")
	}
	return ps.p, nil
}

// memStore is device.Store in memory.
type memStore struct {
	mu sync.Mutex
	ds []*myt.Device
}

func (m *memStore) Devices(ctx context.Context, pid int64) ([]*myt.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*myt.Device
	for _, d := range m.ds {
		if d.PlatformID == pid {
			c := *d
			out = append(out, &c)
		}
	}
	return out, nil
}

func (m *memStore) AddDevices(ctx context.Context, pid int64, ds []*myt.Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range ds {
		for _, o := range m.ds {
			if o.PlatformID == pid && o.Name == d.Name && o.Revoked == nil {
				return myt.Errorf(myt.ECONFLICT, "taken")
			}
		}
	}
	for _, d := range ds {
		d.ID, d.PlatformID, d.Created = int64(len(m.ds)+1), pid, time.Now()
		c := *d
		m.ds = append(m.ds, &c)
	}
	return nil
}

func (m *memStore) RevokeDevice(ctx context.Context, pid int64, name string) (*myt.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.ds {
		if d.PlatformID == pid && d.Name == name && d.Revoked == nil {
			now := time.Now()
			d.Revoked = &now
			c := *d
			return &c, nil
		}
	}
	return nil, myt.Errorf(myt.ENOTFOUND, "no device")
}

func (m *memStore) DeleteDevice(ctx context.Context, id int64) error { return nil }

func (m *memStore) SetActivity(ctx context.Context, id int64, connected bool, n int64, at time.Time) error {
	return nil
}

func newService(t *testing.T, b *broker) (*device.Service, context.Context) {
	p := &myt.Platform{ID: 7, UserID: 1, Name: "here", Status: myt.StatusRunning,
		Design: &myt.Design{Spec: myt.DesignSpec{Target: myt.Target{Provider: myt.ProviderLocal}}}}
	s := &device.Service{Platforms: platforms{p: p}, Store: &memStore{}, Secrets: secrets{render.SecretRabbitMQAdmin: b.adminPw + "\n"}, Dialer: dialer{b}}
	ctx := myt.NewContextWithAuth(context.Background(), &myt.Auth{User: &myt.User{ID: 1}})
	return s, ctx
}

// client is a device's MQTT connection; lost is closed when the broker
// drops it.
type client struct {
	c    mqtt.Client
	lost chan struct{}
}

func connect(t *testing.T, addr, user, pw string) (*client, error) {
	t.Helper()
	cl := &client{lost: make(chan struct{})}
	var once sync.Once
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(user + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)).
		SetUsername(user).SetPassword(pw).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(mqtt.Client, error) { once.Do(func() { close(cl.lost) }) })
	cl.c = mqtt.NewClient(opts)
	tok := cl.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect: timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { cl.c.Disconnect(0) })
	return cl, nil
}

// publish sends one QoS 1 message and says whether the broker
// acknowledged it within 5 s.
func (cl *client) publish(topic, body string) error {
	tok := cl.c.Publish(topic, 1, false, body)
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("publish %s: no acknowledgement", topic)
	}
	if err := tok.Error(); err != nil {
		return err
	}
	if !cl.c.IsConnectionOpen() {
		return fmt.Errorf("publish %s: the connection was closed", topic)
	}
	return nil
}

// tap is a queue bound to every device topic: what the platform's
// ingest queue would get.
func tap(t *testing.T, b *broker) <-chan amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(strings.TrimSuffix(b.mq.AMQPURL, "/") + "/" + render.VHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, render.TopicPrefix+".#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// received drains the tap for a second and returns the routing keys.
func received(d <-chan amqp.Delivery) []string {
	var keys []string
	deadline := time.After(time.Second)
	for {
		select {
		case m := <-d:
			keys = append(keys, m.RoutingKey+"="+string(m.Body))
		case <-deadline:
			return keys
		}
	}
}

// TestDevicesOnBroker: each device publishes under its own topic only;
// publishing under another device's is refused by the broker (the
// connection is closed and nothing is routed); a revoked device's open
// connection is closed and it cannot connect again, while the others
// go on.
func TestDevicesOnBroker(t *testing.T) {
	b := startBroker(t)
	s, ctx := newService(t, b)
	a, err := s.AddDevice(ctx, 7, myt.DeviceNew{Name: "dev-a", Description: "kitchen"})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := s.AddDevice(ctx, 7, myt.DeviceNew{Name: "dev-b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice(ctx, 7, myt.DeviceNew{Name: "dev-a"}); myt.ErrorCode(err) != myt.ECONFLICT {
		t.Errorf("second dev-a: %v, want a conflict", err)
	}
	msgs := tap(t, b)

	ca, err := connect(t, b.mq.MQTTAddr, "dev-a", a.Password)
	if err != nil {
		t.Fatalf("dev-a connects: %v", err)
	}
	cb, err := connect(t, b.mq.MQTTAddr, "dev-b", bb.Password)
	if err != nil {
		t.Fatalf("dev-b connects: %v", err)
	}
	if err := ca.publish("myt/dev-a/env", "a1"); err != nil {
		t.Errorf("dev-a on its own topic: %v", err)
	}
	if err := cb.publish("myt/dev-b", "b1"); err != nil {
		t.Errorf("dev-b on its own topic: %v", err)
	}
	if got, want := strings.Join(received(msgs), " "), "myt.dev-a.env=a1 myt.dev-b=b1"; got != want {
		t.Errorf("routed %q, want %q", got, want)
	}

	// dev-a as dev-b: refused, and nothing reaches the queue.
	err = ca.publish("myt/dev-b/env", "forged")
	select {
	case <-ca.lost:
	case <-time.After(5 * time.Second):
		t.Errorf("dev-a published under dev-b's topic (err %v) and kept its connection", err)
	}
	if got := received(msgs); len(got) != 0 {
		t.Errorf("dev-a's message under dev-b's topic was routed: %q", got)
	}
	// Nor a topic outside every device's: the shared prefix's root, or
	// a prefix match ("dev-a" is a prefix of "dev-ab").
	for _, topic := range []string{"myt/dev-ab/env", "other/dev-a", "myt"} {
		c, err := connect(t, b.mq.MQTTAddr, "dev-a", a.Password)
		if err != nil {
			t.Fatal(err)
		}
		c.publish(topic, "x")
		select {
		case <-c.lost:
		case <-time.After(5 * time.Second):
			t.Errorf("dev-a published to %s and kept its connection", topic)
		}
	}
	if got := received(msgs); len(got) != 0 {
		t.Errorf("routed %q", got)
	}

	// A device may subscribe under its own topic (commands), not under
	// another's.
	ca, err = connect(t, b.mq.MQTTAddr, "dev-a", a.Password)
	if err != nil {
		t.Fatal(err)
	}
	if tok := ca.c.Subscribe("myt/dev-a/cmd", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil || !ca.c.IsConnectionOpen() {
		t.Errorf("dev-a subscribes to its own topic: %v", tok.Error())
	}
	tok := ca.c.Subscribe("myt/dev-b/#", 1, nil)
	tok.WaitTimeout(5 * time.Second)
	select {
	case <-ca.lost:
	case <-time.After(5 * time.Second):
		if st, ok := tok.(*mqtt.SubscribeToken); !ok || st.Result()["myt/dev-b/#"] != 0x80 {
			t.Errorf("dev-a subscribed to dev-b's topics")
		}
	}

	// Revoke dev-b: its open connection is closed, it cannot connect
	// again; dev-a goes on.
	if _, err := s.RevokeDevice(ctx, 7, "dev-b"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cb.lost:
	case <-time.After(10 * time.Second):
		t.Errorf("revoked dev-b's connection stays open")
	}
	if c, err := connect(t, b.mq.MQTTAddr, "dev-b", bb.Password); err == nil {
		if c.publish("myt/dev-b/env", "after") == nil {
			t.Errorf("revoked dev-b connected and published")
		}
	}
	ca, err = connect(t, b.mq.MQTTAddr, "dev-a", a.Password)
	if err != nil {
		t.Fatalf("dev-a after dev-b's revocation: %v", err)
	}
	if err := ca.publish("myt/dev-a/env", "a2"); err != nil {
		t.Errorf("dev-a after dev-b's revocation: %v", err)
	}
	if got, want := strings.Join(received(msgs), " "), "myt.dev-a.env=a2"; got != want {
		t.Errorf("routed %q, want %q", got, want)
	}
	if _, err := s.RevokeDevice(ctx, 7, "dev-b"); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("second revoke: %v, want not found", err)
	}
}

// TestReconcile: a broker that lost its users (recreated) gets MyT's
// devices back with their passwords, and a device user MyT does not
// have (revoked while the broker was away) is deleted.
func TestReconcile(t *testing.T) {
	b := startBroker(t)
	s, ctx := newService(t, b)
	a, err := s.AddDevice(ctx, 7, myt.DeviceNew{Name: "dev-a"})
	if err != nil {
		t.Fatal(err)
	}
	// The broker forgets dev-a, and has a stray device user.
	b.api(t, "myt-admin", b.adminPw, "DELETE", "/api/users/dev-a", nil)
	b.api(t, "myt-admin", b.adminPw, "PUT", "/api/users/old", map[string]any{"password": "old-password", "tags": device.Tag})
	b.api(t, "myt-admin", b.adminPw, "PUT", "/api/permissions/myt/old", map[string]any{"configure": "", "write": ".*", "read": ""})
	if _, err := connect(t, b.mq.MQTTAddr, "dev-a", a.Password); err == nil {
		t.Fatal("dev-a connects to a broker that forgot it")
	}
	old, err := connect(t, b.mq.MQTTAddr, "old", "old-password")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Platforms.FindPlatformByID(ctx, 7)
	applied, deleted, err := s.Reconcile(context.Background(), p)
	if err != nil || applied != 1 || deleted != 1 {
		t.Fatalf("Reconcile = %d applied, %d deleted, %v; want 1, 1", applied, deleted, err)
	}
	c, err := connect(t, b.mq.MQTTAddr, "dev-a", a.Password)
	if err != nil {
		t.Fatalf("dev-a after the re-apply: %v", err)
	}
	if err := c.publish("myt/dev-a/x", "1"); err != nil {
		t.Errorf("dev-a after the re-apply: %v", err)
	}
	select {
	case <-old.lost:
	case <-time.After(10 * time.Second):
		t.Errorf("the stray user's connection stays open")
	}
	if code := b.api(t, "myt-admin", b.adminPw, "GET", "/api/users/old", nil); code != 404 {
		t.Errorf("stray user: GET answered %d, want 404", code)
	}
	// The platform's own users are left alone.
	if code := b.api(t, "myt-admin", b.adminPw, "GET", "/api/users/myt-admin", nil); code != 200 {
		t.Errorf("myt-admin: GET answered %d", code)
	}
}

// TestActivity: an open connection makes a device connected, seen now,
// with the messages it published (the management plugin's statistics,
// refreshed every 5 s).
func TestActivity(t *testing.T) {
	b := startBroker(t)
	s, ctx := newService(t, b)
	a, err := s.AddDevice(ctx, 7, myt.DeviceNew{Name: "dev-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice(ctx, 7, myt.DeviceNew{Name: "dev-quiet"}); err != nil {
		t.Fatal(err)
	}
	c, err := connect(t, b.mq.MQTTAddr, "dev-a", a.Password)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.publish("myt/dev-a/x", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, err := s.FindDevices(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*myt.Device{}
		for _, d := range ds {
			got[d.Name] = d
		}
		if q := got["dev-quiet"]; q.Connected || q.LastSeen != nil {
			t.Fatalf("dev-quiet never connected, but is %+v", q)
		}
		d := got["dev-a"]
		if d.Connected && d.LastSeen != nil && d.Messages == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev-a: connected %v, last seen %v, %d messages; want connected, seen, 3", d.Connected, d.LastSeen, d.Messages)
		}
		time.Sleep(time.Second)
	}
}

// TestOwner: another user's platform is not found, whatever the call.
func TestOwner(t *testing.T) {
	b := &broker{}
	s, _ := newService(t, b)
	other := myt.NewContextWithAuth(context.Background(), &myt.Auth{User: &myt.User{ID: 2}})
	if _, err := s.AddDevice(other, 7, myt.DeviceNew{Name: "x"}); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("AddDevice: %v", err)
	}
	if _, err := s.ImportDevices(other, 7, []byte("x\n")); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("ImportDevices: %v", err)
	}
	if _, err := s.FindDevices(other, 7); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("FindDevices: %v", err)
	}
	if _, err := s.RevokeDevice(other, 7, "x"); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("RevokeDevice: %v", err)
	}
}
