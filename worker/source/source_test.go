package source_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/worker/source"
)

// More unroutable dead letters in one batch than amqp091's old return
// buffer (64) all come back, promptly: DeadLetter reports every one of
// them instead of stalling 5 s on each return past the buffer (and
// dropping it).
func TestDeadLetterManyUnroutable(t *testing.T) {
	r := testenv.Require(t).RabbitMQ(t)
	const n = 150
	queue := fmt.Sprintf("src-test-%d", time.Now().UnixNano())
	conn, err := amqp.Dial(r.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := ch.PublishWithContext(context.Background(), "", queue, true, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	src, err := source.New(source.Options{URLs: []string{r.AMQPURL}, Queue: queue, DeadQueue: queue + "-missing",
		Prefetch: 2 * n, BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var dlErr error
	calls := 0
	runCtx, stop := context.WithCancel(ctx)
	err = src.Run(runCtx, nil, func(ctx context.Context, sess *source.Session) error {
		defer stop() // one session is enough
		calls++
		dead := make([]source.Dead, 0, n)
		for d := range sess.Deliveries() {
			dead = append(dead, source.Dead{D: &d, Reason: "test", Detail: "x"})
			if len(dead) == n {
				break
			}
		}
		// Bounded so that a stall fails the test in reasonable time.
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		defer dcancel()
		dlErr = sess.DeadLetter(dctx, dead)
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("run: %v after %d sessions", err, calls)
	}
	want := fmt.Sprintf("%d message(s) unroutable", n)
	if dlErr == nil || !strings.Contains(dlErr.Error(), want) {
		t.Errorf("DeadLetter of %d unroutable messages: %v, want %q", n, dlErr, want)
	}
}
