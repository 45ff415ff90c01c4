package monitor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/monitor"
)

// TestLocalTargetReadsARealBroker: the management API of a real RabbitMQ
// (the test environment's, Debian 12's 3.10.8; the platform runs 3.13.7,
// whose queue fields read here are the same) gives the ingest queue's
// depth and published count; a wrong password is the broker down, saying
// the credentials were refused.
func TestLocalTargetReadsARealBroker(t *testing.T) {
	e := testenv.Require(t)
	start := time.Now()
	mq := e.RabbitMQ(t)
	t.Logf("RabbitMQ up in %s", time.Since(start).Round(time.Millisecond))
	conn, err := amqp.Dial(mq.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("myt.ingest", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	const n = 25
	for i := range n {
		if err := ch.PublishWithContext(context.Background(), "", "myt.ingest", false, false, amqp.Publishing{Body: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	lt := &monitor.LocalTarget{Client: monitor.NewClient(), ManagementURL: mq.ManagementURL, User: mq.User, VHost: "/",
		Password: func(context.Context) (string, error) { return mq.Password, nil }}
	// The management plugin samples queues every few seconds.
	polled := time.Now()
	var got map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := lt.Poll(ctx)
		cancel()
		got = map[string]float64{}
		for _, s := range r.Samples {
			got[s.Metric] = s.Value
		}
		for _, c := range r.Components {
			if c.Name == monitor.ComponentBroker && !c.Up {
				t.Fatalf("broker down: %s", c.Reason)
			}
		}
		if got[monitor.MetricQueueDepth] == n && got[monitor.MetricMessagesIn] == n {
			t.Logf("queue statistics read after %s", time.Since(polled).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the management API gives %v, want queue_depth and messages_in_total %d", got, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lag, ok := got[monitor.MetricWorkerLag]; ok {
		t.Errorf("worker_lag_seconds %v recorded while nothing consumes: it is unknown", lag)
	}

	lt.Password = func(context.Context) (string, error) { return "not-" + mq.Password, nil }
	r := lt.Poll(context.Background())
	for _, c := range r.Components {
		if c.Name == monitor.ComponentBroker && (c.Up || !strings.Contains(c.Reason, "credentials were refused")) {
			t.Errorf("wrong password: %+v", c)
		}
	}
}
