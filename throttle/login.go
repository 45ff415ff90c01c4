package throttle

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/myt-iot/myt"
)

// ClientIP is the address a request came from, without its port. MyT does
// not trust X-Forwarded-For: behind a proxy every client shares the proxy's
// budget, which fails safe.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Budget is a per-key allowance of attempts. *Limiter satisfies it; tests
// may pass their own.
type Budget interface {
	// Allow spends one attempt of key and reports whether it had one.
	Allow(key string) bool
	// Refund gives back one attempt that Allow spent.
	Refund(key string)
}

// Guard decides whether a sign-in may be tried, and bounds the password
// hashing it costs. The web UI and the API share one, so both spend one
// budget. It is safe for concurrent use.
//
// The budgets, and why:
//
//   - "ip:ADDR": every attempt from an address, whatever the account, so one
//     address cannot spray guesses over many accounts.
//   - "pair:USER@ADDR": attempts against one account from one address. This
//     is what stops a single guesser, and it is theirs alone: it does not
//     touch the real user's address.
//   - "user:USER" (the Account budget, slower to refill but with a larger
//     burst): attempts against one account from every address together, so
//     guessing stays slow when spread over many addresses. An address is
//     only charged here once its own budgets let it try, so one address
//     cannot use it up; and an address the account signed in from before
//     (remembered for KnownFor) is never charged nor refused by it. So the
//     real user gets in from their usual address even while a botnet has
//     spent the account's budget, and from a fresh address whenever no
//     botnet has.
//
// Every budget is reserved before the password is hashed (concurrent
// guesses cannot all pass a check made before any of them is charged) and
// refunded when the password was right, so signing in costs nothing.
//
// Hashing (argon2id, about 19 MiB each) runs in at most Slots attempts at
// once; an attempt waits up to Wait for a slot, then is refused as busy.
type Guard struct {
	// Addr holds the "ip:" and "pair:" budgets, Account the "user:" ones;
	// both are required.
	Addr    Budget
	Account Budget
	// Slots bounds concurrent password checks; Wait is how long an attempt
	// waits for one.
	Slots int
	Wait  time.Duration
	// KnownFor is how long a successful sign-in makes its address known
	// to the account.
	KnownFor time.Duration

	once   sync.Once
	slots  chan struct{}
	tagKey []byte

	mu    sync.Mutex
	known map[string]time.Time // "user\x00addr" → last successful sign-in
	now   func() time.Time
}

// maxKnown bounds the remembered (account, address) pairs.
const maxKnown = 100_000

// NewGuard returns a guard with MyT's budgets: an address or an
// (account, address) pair may fail 5 times at once and then 10 times a
// minute; an account, from all addresses together, 30 at once and then 3 a
// minute. Password checks run at most GOMAXPROCS at once (one argon2id
// already uses a core), waiting up to two seconds for a slot.
func NewGuard() *Guard {
	return &Guard{
		Addr:     New(10, 5),
		Account:  New(3, 30),
		Slots:    runtime.GOMAXPROCS(0),
		Wait:     2 * time.Second,
		KnownFor: 30 * 24 * time.Hour,
	}
}

// WithClock replaces the clock of the known addresses (for tests) and
// returns g.
func (g *Guard) WithClock(now func() time.Time) *Guard {
	g.now = now
	return g
}

func (g *Guard) init() {
	g.once.Do(func() {
		if g.Slots < 1 {
			g.Slots = 1
		}
		g.slots = make(chan struct{}, g.Slots)
		g.tagKey = make([]byte, 32)
		rand.Read(g.tagKey)
		g.known = map[string]time.Time{}
		if g.now == nil {
			g.now = time.Now
		}
	})
}

// Refusal is the error of a refused attempt: ETOOMANY, and how long the
// client should wait (the Retry-After header).
type Refusal struct {
	Err        *myt.Error
	RetryAfter time.Duration
}

func (e *Refusal) Error() string { return e.Err.Error() }

// Unwrap lets myt.ErrorCode and myt.ErrorMessage see the *myt.Error.
func (e *Refusal) Unwrap() error { return e.Err }

// Attempt is a sign-in that may hash a password. End it with Done.
type Attempt struct {
	g     *Guard
	spent []spent
	user  string
	addr  string
	done  bool
}

type spent struct {
	b   Budget
	key string
}

// Begin reserves the budgets of a sign-in by username (case-folded, as
// user names are; "" for an attempt not against an account, such as a
// sign-up that may be guessing an invitation) and a password-check slot. It
// returns a *Refusal when a budget is spent or no slot freed up within
// Wait.
func (g *Guard) Begin(ctx context.Context, r *http.Request, username string) (*Attempt, error) {
	g.init()
	addr := ClientIP(r)
	user := strings.ToLower(username)
	a := &Attempt{g: g, user: user, addr: addr}
	take := func(b Budget, key string) bool {
		if !b.Allow(key) {
			return false
		}
		a.spent = append(a.spent, spent{b, key})
		return true
	}
	ok := take(g.Addr, "ip:"+addr)
	if ok && user != "" {
		ok = take(g.Addr, "pair:"+user+"@"+addr)
		if ok && !g.isKnown(user, addr) {
			ok = take(g.Account, "user:"+user)
		}
	}
	if !ok {
		a.refund()
		return nil, &Refusal{Err: myt.Errorf(myt.ETOOMANY, "Too many sign-in attempts. Wait a minute, then try again."), RetryAfter: time.Minute}
	}
	t := time.NewTimer(g.Wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return a, nil
	case <-t.C:
	case <-ctx.Done():
	}
	a.refund()
	return nil, &Refusal{Err: myt.Errorf(myt.ETOOMANY, "MyT is busy checking other sign-ins. Try again in a moment."), RetryAfter: time.Second}
}

// Done ends the attempt: it frees the password-check slot and, when the
// password was right, refunds every budget and remembers the address for
// the account. Only the first call counts.
func (a *Attempt) Done(ok bool) {
	if a == nil || a.done {
		return
	}
	a.done = true
	<-a.g.slots
	if ok {
		a.refund()
		if a.user != "" {
			a.g.remember(a.user, a.addr)
		}
	}
}

func (a *Attempt) refund() {
	for _, s := range a.spent {
		s.b.Refund(s.key)
	}
	a.spent = nil
}

func (g *Guard) isKnown(user, addr string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.known[user+"\x00"+addr]
	return ok && g.now().Sub(t) < g.KnownFor
}

func (g *Guard) remember(user, addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if len(g.known) >= maxKnown {
		for k, t := range g.known {
			if now.Sub(t) >= g.KnownFor || len(g.known) >= maxKnown {
				delete(g.known, k)
			}
		}
	}
	g.known[user+"\x00"+addr] = now
}

// Tag is what logs say instead of a user name typed at a sign-in: people
// type their password into the name field, so the name itself is never
// logged. It is a keyed hash (the key is new each start, so a log does not
// let anyone test guesses against it), truncated; a successful sign-in logs
// the name beside its tag, which ties failures to an account.
func (g *Guard) Tag(username string) string {
	g.init()
	m := hmac.New(sha256.New, g.tagKey)
	m.Write([]byte(strings.ToLower(username)))
	return hex.EncodeToString(m.Sum(nil)[:4])
}
