package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/throttle"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := throttle.New(6, 3).WithClock(func() time.Time { return now })
	for i := range 3 {
		if !l.Allow("1.2.3.4") {
			t.Fatalf("attempt %d of the burst refused", i+1)
		}
	}
	if l.Allow("1.2.3.4") || l.Ready("1.2.3.4") {
		t.Fatal("4th attempt within the same instant allowed")
	}
	for range 10 {
		if !l.Ready("9.9.9.9") {
			t.Fatal("Ready took a token")
		}
	}
	if !l.Allow("5.6.7.8") {
		t.Fatal("another key is limited by the first")
	}
	now = now.Add(9 * time.Second) // 6/min = one every 10 s
	if l.Allow("1.2.3.4") {
		t.Fatal("allowed before a token refilled")
	}
	now = now.Add(time.Second)
	if !l.Allow("1.2.3.4") {
		t.Fatal("refused after a token refilled")
	}
}

func TestRefund(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := throttle.New(1, 2).WithClock(func() time.Time { return now })
	l.Allow("k")
	l.Allow("k")
	if l.Allow("k") {
		t.Fatal("allowed past the burst")
	}
	l.Refund("k")
	if !l.Allow("k") {
		t.Fatal("a refunded token is not there")
	}
	l.Refund("k")
	l.Refund("k")
	l.Refund("k")
	for range 2 {
		l.Allow("k")
	}
	if l.Allow("k") {
		t.Fatal("refunds filled the bucket past its burst")
	}
}

func request(addr string) *http.Request {
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = addr
	return r
}

// TestGuard: budgets are reserved at Begin, refunded by a right password;
// a known address skips the account budget until KnownFor has passed.
func TestGuard(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	g := (&throttle.Guard{Addr: throttle.New(1, 2).WithClock(clock), Account: throttle.New(1, 3).WithClock(clock), Slots: 4, Wait: time.Second, KnownFor: time.Hour}).WithClock(clock)
	ctx := context.Background()
	a1, err1 := g.Begin(ctx, request("192.0.2.1:1"), "Ada")
	a2, err2 := g.Begin(ctx, request("192.0.2.1:2"), "ada")
	if err1 != nil || err2 != nil {
		t.Fatalf("the burst refused: %v %v", err1, err2)
	}
	// Both are still hashing: a third is refused, not let through.
	_, err := g.Begin(ctx, request("192.0.2.1:3"), "ada")
	var ref *throttle.Refusal
	if !errors.As(err, &ref) || myt.ErrorCode(err) != myt.ETOOMANY || ref.RetryAfter != time.Minute {
		t.Fatalf("third concurrent attempt: %v", err)
	}
	a1.Done(false)
	a2.Done(true) // refunds its tokens: one more attempt
	a3, err := g.Begin(ctx, request("192.0.2.1:4"), "ada")
	if err != nil {
		t.Fatalf("after a refund: %v", err)
	}
	a3.Done(false)
	// The account budget (3) is spent by another address's failures...
	for i := range 2 {
		a, err := g.Begin(ctx, request("198.51.100.1:1"), "ada")
		if err != nil {
			t.Fatalf("attempt %d from another address: %v", i+1, err)
		}
		a.Done(false)
	}
	if _, err := g.Begin(ctx, request("203.0.113.1:1"), "ada"); err == nil {
		t.Fatal("a fresh address tried an account whose budget is spent")
	}
	// ...but 192.0.2.1 signed in (a2): it is known, once its own budgets
	// refill.
	now = now.Add(2 * time.Minute)
	if a, err := g.Begin(ctx, request("192.0.2.1:5"), "ada"); err != nil {
		t.Fatalf("the known address: %v", err)
	} else {
		a.Done(false)
	}
	now = now.Add(2 * time.Hour) // refills everything, and forgets
	for i := range 3 {
		a, err := g.Begin(ctx, request(fmt.Sprintf("198.51.100.%d:1", 10+i)), "ada")
		if err != nil {
			t.Fatal(err)
		}
		a.Done(false)
	}
	if _, err := g.Begin(ctx, request("192.0.2.1:6"), "ada"); err == nil {
		t.Error("an address known more than KnownFor ago skipped the account budget")
	}
}

// TestGuardSlots: at most Slots attempts hash at once; the next waits
// Wait, then is refused as busy.
func TestGuardSlots(t *testing.T) {
	g := &throttle.Guard{Addr: throttle.New(600, 100), Account: throttle.New(600, 100), Slots: 2, Wait: 20 * time.Millisecond}
	ctx := context.Background()
	a, _ := g.Begin(ctx, request("192.0.2.1:1"), "a")
	b, _ := g.Begin(ctx, request("192.0.2.1:1"), "b")
	_, err := g.Begin(ctx, request("192.0.2.1:1"), "c")
	var ref *throttle.Refusal
	if !errors.As(err, &ref) || ref.RetryAfter != time.Second || !strings.Contains(myt.ErrorMessage(err), "busy") {
		t.Fatalf("third attempt with two slots taken: %v", err)
	}
	a.Done(false)
	c, err := g.Begin(ctx, request("192.0.2.1:1"), "c")
	if err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
	b.Done(false)
	c.Done(false)
	c.Done(false) // a second Done frees nothing more
	// The tag is hex: a name with letters beyond f (not "ada", which a
	// random tag holds one time in a few hundred) shows it is not in it.
	if g.Tag("Oscar") != g.Tag("oscar") || g.Tag("oscar") == g.Tag("quinn") || strings.Contains(g.Tag("oscar"), "oscar") {
		t.Errorf("tags: %s %s %s", g.Tag("Oscar"), g.Tag("oscar"), g.Tag("quinn"))
	}
}
