package throttle

import (
	"net"
	"net/http"
	"strings"
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

// LoginKeys returns the keys a sign-in attempt is limited by: the client
// address and, when one is given, the user name (case-folded, as user
// names are). The web UI and the API use the same keys, so both spend
// one budget.
func LoginKeys(r *http.Request, username string) []string {
	keys := []string{"ip:" + ClientIP(r)}
	if username != "" {
		keys = append(keys, "user:"+strings.ToLower(username))
	}
	return keys
}

// Budget is a per-key allowance of attempts. *Limiter satisfies it; tests
// may pass their own.
type Budget interface {
	// Ready reports whether key may try now, without spending anything.
	Ready(key string) bool
	// Allow spends one attempt of key and reports whether it had one.
	Allow(key string) bool
}

// LoginReady reports whether a sign-in may be tried: whether every one of
// its LoginKeys has an attempt left. It spends nothing, so successful
// sign-ins cost nothing (see LoginFailed).
func LoginReady(b Budget, r *http.Request, username string) bool {
	ok := true
	for _, key := range LoginKeys(r, username) {
		ok = b.Ready(key) && ok
	}
	return ok
}

// LoginFailed spends one attempt of every one of the request's LoginKeys
// and reports whether each had one. Call it after a failed sign-in, or
// before an attempt that always counts (a sign-up that may be guessing an
// invitation).
func LoginFailed(b Budget, r *http.Request, username string) bool {
	ok := true
	for _, key := range LoginKeys(r, username) {
		ok = b.Allow(key) && ok // every key, so each bucket is spent
	}
	return ok
}
