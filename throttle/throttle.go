// Package throttle limits how often a key (a client address, a user name)
// may try something, such as logging in: a token bucket per key, with idle
// buckets forgotten so memory stays bounded.
package throttle

import (
	"sync"
	"time"
)

// Limiter is a set of token buckets, one per key. It is safe for
// concurrent use.
type Limiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*bucket
	now     func() time.Time
	maxKeys int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter that allows burst attempts at once and then
// perMinute attempts a minute, per key.
func New(perMinute, burst int) *Limiter {
	return &Limiter{
		rate:    float64(perMinute) / 60,
		burst:   float64(burst),
		buckets: map[string]*bucket{},
		now:     time.Now,
		maxKeys: 100_000,
	}
}

// WithClock replaces the clock (for tests) and returns l.
func (l *Limiter) WithClock(now func() time.Time) *Limiter {
	l.now = now
	return l
}

// Allow takes one token from key's bucket and reports whether there was one.
func (l *Limiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Refund gives back one token that Allow took from key's bucket (a
// sign-in that turned out right costs nothing).
func (l *Limiter) Refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	b.tokens = min(l.burst, b.tokens+1)
}

// Ready reports whether key's bucket holds a token, without taking it. With
// Allow on failure only, successful attempts cost nothing: people sharing an
// office address are not locked out by each other's logins.
func (l *Limiter) Ready(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refill(key).tokens >= 1
}

// refill returns key's bucket topped up for the time since its last use.
func (l *Limiter) refill(key string) *bucket {
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	return b
}

// sweep forgets buckets that have refilled completely: they behave exactly
// like new ones.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}
