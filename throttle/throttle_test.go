package throttle_test

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

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

func TestLoginKeys(t *testing.T) {
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "[2001:db8::1]:4711"
	if got := throttle.LoginKeys(r, "Ada"); !slices.Equal(got, []string{"ip:2001:db8::1", "user:ada"}) {
		t.Errorf("LoginKeys = %v", got)
	}
	r.RemoteAddr = "192.0.2.7:80"
	if got := throttle.LoginKeys(r, ""); !slices.Equal(got, []string{"ip:192.0.2.7"}) {
		t.Errorf("LoginKeys without user = %v", got)
	}
}

func TestLoginBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := throttle.New(1, 2).WithClock(func() time.Time { return now })
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "192.0.2.7:80"
	for i := range 10 {
		if !throttle.LoginReady(l, r, "ada") {
			t.Fatalf("LoginReady %d refused: it must spend nothing", i+1)
		}
	}
	// Two failures use up both the address's and the user's burst.
	for i := range 2 {
		if !throttle.LoginFailed(l, r, "ada") {
			t.Fatalf("failure %d within the burst reported as over budget", i+1)
		}
	}
	if throttle.LoginReady(l, r, "ada") || throttle.LoginFailed(l, r, "ada") {
		t.Fatal("sign-in allowed after the burst of failures")
	}
	// Another user from the same address is refused (the address is spent),
	// but LoginFailed still spends that user's bucket: every key is checked.
	if throttle.LoginReady(l, r, "bob") {
		t.Fatal("another user from a spent address allowed")
	}
	throttle.LoginFailed(l, r, "bob")
	throttle.LoginFailed(l, r, "bob")
	other := httptest.NewRequest("POST", "/login", nil)
	other.RemoteAddr = "198.51.100.1:80"
	if throttle.LoginReady(l, other, "bob") {
		t.Fatal("bob's spent budget not applied from another address")
	}
	if !throttle.LoginReady(l, other, "eve") {
		t.Fatal("a fresh user from a fresh address refused")
	}
}
