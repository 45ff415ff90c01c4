package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
)

// from returns a client whose connections come from the loopback address
// ip (127.0.0.0/8 is all local on Linux), so the server sees another
// client address.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// login posts a sign-in from c and returns the status and Retry-After.
func (e *env) login(c *http.Client, user, pw string) (int, string, string) {
	e.t.Helper()
	resp, err := c.Post(e.srv.URL+"/api/v1/login", "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// signedUp runs setup for ada.
func (e *env) signedUp() {
	e.t.Helper()
	if status, body := e.call("POST", "/api/v1/setup", "", `{"username":"ada","password":"correct horse battery"}`); status != 201 {
		e.t.Fatalf("setup: %d %v", status, body)
	}
}

// concurrently runs n sign-ins at once and counts the statuses.
func (e *env) concurrently(n int, attempt func(i int) (int, string, string)) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			status, _, _ := attempt(i)
			mu.Lock()
			got[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}

// TestConcurrentGuessesAreThrottled: 30 wrong passwords at once get no
// more password checks than the budget (5), the rest 429. A budget checked
// before hashing but spent after let all 30 through.
func TestConcurrentGuessesAreThrottled(t *testing.T) {
	// Hashes slow enough (8 MiB each) that the guesses overlap.
	e := newEnvParams(t, throttle.NewGuard(), vault.Params{Time: 1, Memory: 8 << 10, Threads: 1})
	e.signedUp()
	c := from("127.0.0.1")
	got := e.concurrently(30, func(int) (int, string, string) { return e.login(c, "ada", "wrong password") })
	if got[http.StatusUnauthorized] > 5 || got[http.StatusTooManyRequests] < 25 {
		t.Errorf("30 concurrent wrong passwords: %v, want at most 5 401s, the rest 429", got)
	}
}

// TestGuessingDoesNotLockTheUserOut: wrong passwords from one address do
// not stop the right password from another; guesses spread over many
// addresses use up the account's budget, and then only an address the
// account signed in from before gets in.
func TestGuessingDoesNotLockTheUserOut(t *testing.T) {
	e := newEnv(t, &throttle.Guard{Addr: throttle.New(10, 5), Account: throttle.New(1, 12), Slots: 2, Wait: 10 * time.Second, KnownFor: time.Hour})
	e.signedUp()
	attacker, user := from("127.0.0.2"), from("127.0.0.3")
	var last int
	for range 10 {
		last, _, _ = e.login(attacker, "ada", "wrong password")
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("10th wrong password from one address: %d, want 429", last)
	}
	if status, _, body := e.login(user, "ada", "correct horse battery"); status != http.StatusCreated {
		t.Fatalf("the right password from another address after guesses from one: %d %s", status, body)
	}
	// A botnet: each address within its own budget, together past the
	// account's (12, of which the first address spent 5).
	for i := range 4 {
		for range 3 {
			e.login(from(fmt.Sprintf("127.0.1.%d", i+1)), "ada", "wrong password")
		}
	}
	if status, _, _ := e.login(from("127.0.2.1"), "ada", "wrong password"); status != http.StatusTooManyRequests {
		t.Errorf("a guess from a fresh address once the account's budget is spent: %d, want 429", status)
	}
	if status, _, body := e.login(user, "ada", "correct horse battery"); status != http.StatusCreated {
		t.Errorf("the right password from the address ada signed in from before: %d %s", status, body)
	}
}

// TestPasswordChecksAreCapped: 40 sign-ins at once for unknown users hash
// at most Slots passwords at a time; those that find no slot in time get
// 429 with Retry-After, and the heap grows by a few hashes' memory, not by
// forty (argon2id holds its whole memory parameter while it runs).
func TestPasswordChecksAreCapped(t *testing.T) {
	const hashMiB = 16
	e := newEnvParams(t, &throttle.Guard{Addr: throttle.New(6000, 1000), Account: throttle.New(6000, 1000), Slots: 2, Wait: 50 * time.Millisecond},
		vault.Params{Time: 1, Memory: hashMiB << 10, Threads: 1})
	e.signedUp()
	c := from("127.0.0.1")
	var retry sync.Map
	peak := peakHeapGrowth(func() {
		got := e.concurrently(40, func(i int) (int, string, string) {
			status, ra, body := e.login(c, fmt.Sprintf("nobody%d", i), "wrong password")
			if status == http.StatusTooManyRequests {
				retry.Store(ra, body)
			}
			return status, ra, body
		})
		if got[http.StatusTooManyRequests] == 0 || got[http.StatusUnauthorized]+got[http.StatusTooManyRequests] != 40 {
			t.Errorf("40 concurrent sign-ins with 2 slots: %v, want some 429s, the rest 401", got)
		}
	})
	retry.Range(func(k, v any) bool {
		if k != "1" || !strings.Contains(v.(string), "busy") {
			t.Errorf("429 with Retry-After %q: %s", k, v)
		}
		return true
	})
	t.Logf("peak heap growth: %d MiB", peak>>20)
	if limit := uint64(8 * hashMiB << 20); peak > limit {
		t.Errorf("the heap grew by %d MiB for 40 sign-ins with 2 slots, more than %d", peak>>20, limit>>20)
	}
}

// peakHeapGrowth runs fn and returns how far the heap grew above where it
// started, sampled every millisecond.
func peakHeapGrowth(fn func()) uint64 {
	ctx, cancel := context.WithCancel(context.Background())
	base := heapBytes()
	var peak uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			peak = max(peak, heapBytes())
			time.Sleep(time.Millisecond)
		}
	}()
	fn()
	cancel()
	<-done
	if peak < base {
		return 0
	}
	return peak - base
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestLoginTokenExpires: a token issued by login expires DefaultTokenTTL
// after its last use, and the token list says when it was last used.
func TestLoginTokenExpires(t *testing.T) {
	e := newEnv(t, nil)
	e.signedUp()
	status, body := e.call("POST", "/api/v1/login", "", `{"username":"ada","password":"correct horse battery"}`)
	if status != http.StatusCreated {
		t.Fatalf("login: %d %v", status, body)
	}
	exp, _ := time.Parse(time.RFC3339, fmt.Sprint(body["session"].(map[string]any)["expires"]))
	if d := time.Until(exp); d < httpapi.DefaultTokenTTL-time.Minute || d > httpapi.DefaultTokenTTL {
		t.Errorf("a login token expires in %s, want %s", d, httpapi.DefaultTokenTTL)
	}
	token := body["token"].(string)
	if status, _ := e.call("GET", "/api/v1/me", token, ""); status != http.StatusOK {
		t.Fatalf("me: %d", status)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ts []struct {
		Name     string
		LastUsed *time.Time
	}
	json.NewDecoder(resp.Body).Decode(&ts)
	resp.Body.Close()
	if len(ts) == 0 || ts[0].LastUsed == nil || time.Since(*ts[0].LastUsed) > time.Minute {
		t.Errorf("tokens: %+v, want the newest with its last use", ts)
	}
}

// TestPasswordChangeRevokesOtherTokens: after a password change only the
// token that made it still works.
func TestPasswordChangeRevokesOtherTokens(t *testing.T) {
	e := newEnv(t, nil)
	e.signedUp()
	var tokens []string
	for range 2 {
		_, body := e.call("POST", "/api/v1/login", "", `{"username":"ada","password":"correct horse battery"}`)
		tokens = append(tokens, body["token"].(string))
	}
	if status, body := e.call("POST", "/api/v1/me/password", tokens[0], `{"old":"correct horse battery","new":"another fine password"}`); status != http.StatusNoContent {
		t.Fatalf("change password: %d %v", status, body)
	}
	if status, _ := e.call("GET", "/api/v1/me", tokens[0], ""); status != http.StatusOK {
		t.Errorf("the token that changed the password: %d", status)
	}
	if status, _ := e.call("GET", "/api/v1/me", tokens[1], ""); status != http.StatusUnauthorized {
		t.Errorf("another token after the password change: %d, want 401", status)
	}
}
