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
