package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/httpapi"
)

// deviceConn is one device's MQTTS connection to a deployed platform;
// lost is closed when the broker drops it.
type deviceConn struct {
	c    mqtt.Client
	lost chan struct{}
}

// connectDevice connects over MQTT TLS as a device, trusting only the
// platform's CA.
func connectDevice(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost, user, pw string) (*deviceConn, error) {
	t.Helper()
	ca, err := c.PlatformCA(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	dc := &deviceConn{lost: make(chan struct{})}
	var once sync.Once
	opts := mqtt.NewClientOptions().AddBroker("ssl://" + h.mqtt).SetClientID("e2e-" + user + "-" + time.Now().Format("150405.000")).
		SetUsername(user).SetPassword(pw).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: h.serverName, MinVersion: tls.VersionTLS12}).
		SetConnectTimeout(20 * time.Second).
		SetConnectionLostHandler(func(mqtt.Client, error) { once.Do(func() { close(dc.lost) }) })
	dc.c = mqtt.NewClient(opts)
	tok := dc.c.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { dc.c.Disconnect(0) })
	return dc, nil
}

// send publishes one QoS 1 message and waits for the broker's
// acknowledgement.
func (dc *deviceConn) send(topic, body string) error {
	tok := dc.c.Publish(topic, 1, false, body)
	if !tok.WaitTimeout(10 * time.Second) {
		return context.DeadlineExceeded
	}
	return tok.Error()
}

// closedWithin says whether the broker closed the connection within d.
func (dc *deviceConn) closedWithin(d time.Duration) bool {
	select {
	case <-dc.lost:
		return true
	case <-time.After(d):
		return false
	}
}

// devicesOperate proves the per-device credentials' two security
// properties on a deployed platform, over MQTT TLS, with what the worker
// stored as the evidence: a device cannot publish under another device's
// topic (the broker closes its connection and nothing is stored), and a
// revoked device is disconnected and cannot connect again while the
// others go on. Then the broker forgets a device behind MyT's back and a
// deploy puts it back (devices are re-applied after every deploy).
func devicesOperate(t *testing.T, c *httpapi.Client, p *myt.Platform, h platformHost) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	project := "myt-" + p.Name
	a, err := c.AddDevice(ctx, p.ID, myt.DeviceNew{Name: "e2e-a"})
	if err != nil {
		t.Fatalf("add device: %v", err)
	}
	b, err := c.AddDevice(ctx, p.ID, myt.DeviceNew{Name: "e2e-b"})
	if err != nil {
		t.Fatalf("add device: %v", err)
	}
	ca, err := connectDevice(t, c, p, h, "e2e-a", a.Password)
	if err != nil {
		t.Fatalf("e2e-a connects: %v", err)
	}
	cb, err := connectDevice(t, c, p, h, "e2e-b", b.Password)
	if err != nil {
		t.Fatalf("e2e-b connects: %v", err)
	}
	if err := ca.send("myt/e2e-a/data", `{"temperature": 1.5}`); err != nil {
		t.Fatalf("e2e-a publishes on its topic: %v", err)
	}
	if err := cb.send("myt/e2e-b/data", `{"temperature": 2.5}`); err != nil {
		t.Fatalf("e2e-b publishes on its topic: %v", err)
	}
	waitRecords(t, h, project, "e2e-a", 1)
	waitRecords(t, h, project, "e2e-b", 1)

	// e2e-a as e2e-b: the broker closes the connection; nothing stored.
	ca.send("myt/e2e-b/data", `{"temperature": 99}`)
	if !ca.closedWithin(15 * time.Second) {
		t.Errorf("e2e-a published under e2e-b's topic and kept its connection")
	}

	// Revoke e2e-b while it is connected.
	if _, err := c.RevokeDevice(ctx, p.ID, "e2e-b"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if !cb.closedWithin(15 * time.Second) {
		t.Errorf("the revoked e2e-b keeps its connection open")
	}
	if rc, err := connectDevice(t, c, p, h, "e2e-b", b.Password); err == nil {
		if rc.send("myt/e2e-b/data", `{"temperature": 98}`) == nil && !rc.closedWithin(5*time.Second) {
			t.Errorf("the revoked e2e-b connected and published")
		}
	}
	// e2e-a goes on.
	ca, err = connectDevice(t, c, p, h, "e2e-a", a.Password)
	if err != nil {
		t.Fatalf("e2e-a reconnects: %v", err)
	}
	if err := ca.send("myt/e2e-a/data", `{"temperature": 3.5}`); err != nil {
		t.Errorf("e2e-a after the revocation: %v", err)
	}
	waitRecords(t, h, project, "e2e-a", 2)
	time.Sleep(3 * time.Second) // anything forged or sent after the revocation would be stored by now
	if n := len(records(t, h, project, "e2e-b")); n != 1 {
		t.Errorf("e2e-b has %d records, want 1: a forged or post-revocation message was stored", n)
	}
	// The broker lists a connection within its statistics interval (5 s).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
		ds, err := c.Devices(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var d *myt.Device
		for _, x := range ds {
			if x.Name == "e2e-a" {
				d = x
			}
		}
		if d != nil && d.Connected && d.LastSeen != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("e2e-a is connected, but listed %+v", d)
			break
		}
	}

	// The broker forgets e2e-a (a broker recreated without its data);
	// the next deploy re-applies MyT's devices.
	h.docker(t, "exec", project+"-rabbitmq-1", "rabbitmqctl", "delete_user", "e2e-a")
	if _, err := connectDevice(t, c, p, h, "e2e-a", a.Password); err == nil {
		t.Fatalf("e2e-a connects to a broker that forgot it")
	}
	j := runJob(t, c, p.ID, myt.JobRequest{Kind: myt.JobDeploy})
	if j.State != myt.JobSucceeded || !strings.Contains(jobLog(t, c, j.ID), "devices: 1 re-applied to the broker") {
		t.Errorf("deploy: %s; log:\n%s", j.State, jobLog(t, c, j.ID))
	}
	ca, err = connectDevice(t, c, p, h, "e2e-a", a.Password)
	if err != nil {
		t.Fatalf("e2e-a after the deploy: %v", err)
	}
	if err := ca.send("myt/e2e-a/data", `{"temperature": 4.5}`); err != nil {
		t.Errorf("e2e-a after the deploy: %v", err)
	}
	waitRecords(t, h, project, "e2e-a", 3)
	t.Logf("devices: own topics, another's refused, revoked disconnected, re-applied by a deploy: %s", time.Since(start).Round(time.Second))
}
