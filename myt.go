// Package myt holds MyT's domain: the types every part of the control plane
// shares (users, credentials, platform designs, platforms), the error type
// with its codes, and the service interfaces that the sqlite, httpapi and web
// packages implement or consume. It imports only the standard library.
//
// MyT lets a person design an IoT platform (broker, worker, database,
// Grafana), deploy it on infrastructure they own, operate it and destroy it.
package myt

import (
	"context"
	"runtime/debug"
	"strings"
)

// Version, Commit and Date describe the build: the MyT release, the
// source commit and the build time (RFC 3339, UTC). scripts/release sets
// them with -ldflags "-X github.com/myt-iot/myt.Version=..." (and .Commit,
// .Date); a plain go build leaves the defaults.
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// A binary built by `go install github.com/myt-iot/myt/cmd/myt@v1.2.0`
// has no -X flags but knows its module version: report that rather
// than "dev".
func init() {
	if bi, ok := debug.ReadBuildInfo(); ok && Version == "dev" && strings.HasPrefix(bi.Main.Version, "v") {
		Version = strings.TrimPrefix(bi.Main.Version, "v")
	}
}

// Auth is the authenticated principal of a request: the user and, for
// sessions and API tokens, the user's data key that unlocks their sealed
// credentials. The data key exists only in memory for the request.
type Auth struct {
	User *User
	// DataKey is the user's credential key, unwrapped at login. It is nil
	// when the principal has not unlocked it (never for normal sessions).
	DataKey []byte
	// SessionID identifies the session or token the request came with.
	SessionID int64
}

type authKey struct{}

// NewContextWithAuth returns a child context carrying a.
func NewContextWithAuth(ctx context.Context, a *Auth) context.Context {
	return context.WithValue(ctx, authKey{}, a)
}

// AuthFromContext returns the principal stored by NewContextWithAuth, or nil.
func AuthFromContext(ctx context.Context) *Auth {
	a, _ := ctx.Value(authKey{}).(*Auth)
	return a
}

// UserFromContext returns the authenticated user, or nil.
func UserFromContext(ctx context.Context) *User {
	if a := AuthFromContext(ctx); a != nil {
		return a.User
	}
	return nil
}
