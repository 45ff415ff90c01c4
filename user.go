package myt

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// User is an account of the control plane.
type User struct {
	ID       int64     `json:"id"`
	Username string    `json:"username"`
	Admin    bool      `json:"admin"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	// CredentialsLost is set when an admin reset this user's password: the
	// credentials sealed with the old data key cannot be opened any more and
	// must be entered again. Cleared when the user has dealt with them.
	CredentialsLost bool `json:"credentialsLost"`
}

// UserCreate is the input of UserService.CreateUser.
type UserCreate struct {
	Username string
	Password string
	Admin    bool
	// Invite is the invitation code for self sign-up; empty when an admin
	// creates the user, or for the first user.
	Invite string
}

var usernameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{1,31}$`)

// Validate checks the username and password rules and returns an EINVALID
// *Error listing every problem (fields "username", "password"), or nil.
func (in UserCreate) Validate() error {
	var errs []FieldError
	if !usernameRE.MatchString(in.Username) {
		errs = append(errs, FieldError{Field: "username", Message: "must be 2-32 characters of letters, digits, '.', '_' and '-', starting with a letter or digit"})
	}
	switch {
	case len(in.Password) < MinPasswordLen:
		errs = append(errs, FieldError{Field: "password", Message: fmt.Sprintf("must be at least %d characters", MinPasswordLen)})
	case len(in.Password) > MaxPasswordLen:
		errs = append(errs, FieldError{Field: "password", Message: fmt.Sprintf("must be at most %d characters", MaxPasswordLen)})
	}
	return Invalid("The account details are not valid.", errs)
}

// UserUpdate changes a user; nil fields stay as they are.
type UserUpdate struct {
	Admin    *bool
	Disabled *bool
}

// Password rules.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 1024
)

// UserService manages accounts and their keys. Methods that act on behalf
// of someone read the principal from the context (AuthFromContext).
type UserService interface {
	// CreateUser creates an account and its vault keys. The first user may
	// be created without a principal and is always an admin; after that the
	// caller must be an admin (EFORBIDDEN), or present a valid invitation,
	// or sign-up must be open (EFORBIDDEN otherwise). EINVALID for a bad
	// username or password, ECONFLICT when the username is taken.
	CreateUser(ctx context.Context, in UserCreate) (*User, error)

	// Authenticate checks a username and password and returns the
	// principal with the unwrapped data key. EUNAUTHORIZED when either is
	// wrong or the user is disabled (the same message for all three).
	Authenticate(ctx context.Context, username, password string) (*Auth, error)

	// CountUsers returns the number of accounts (0 before first-run setup).
	CountUsers(ctx context.Context) (int, error)

	// FindUserByID returns a user; callers other than the user itself must
	// be admins. ENOTFOUND, EFORBIDDEN.
	FindUserByID(ctx context.Context, id int64) (*User, error)

	// FindUsers lists all users (admins only, EFORBIDDEN).
	FindUsers(ctx context.Context) ([]*User, error)

	// UpdateUser changes admin/disabled flags (admins only). Disabling a
	// user ends their sessions and tokens. An admin cannot disable or demote
	// themselves (EINVALID), so there is always an admin.
	UpdateUser(ctx context.Context, id int64, upd UserUpdate) (*User, error)

	// ChangePassword changes the principal's own password and re-wraps the
	// data key the principal carries; sealed credentials stay readable.
	// Every other session and API token of the user ends; the principal's
	// own session goes on. EUNAUTHORIZED when old is wrong or the principal
	// has no data key.
	ChangePassword(ctx context.Context, old, new string) error

	// ResetPassword sets another user's password (admins only). The old
	// data key cannot be recovered: the user gets a new one, their sealed
	// credentials are marked lost, and their sessions and tokens end.
	ResetPassword(ctx context.Context, id int64, password string) error

	// AcknowledgeLostCredentials deletes the principal's credentials that
	// were sealed with a lost key and clears CredentialsLost.
	AcknowledgeLostCredentials(ctx context.Context) error
}

// Settings are instance-wide options an admin sets.
type Settings struct {
	// OpenSignup lets anyone create an account without an invitation.
	OpenSignup bool `json:"openSignup"`
}

// Invite is a one-time sign-up code created by an admin.
type Invite struct {
	ID      int64     `json:"id"`
	Code    string    `json:"code,omitempty"` // only when just created
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Used    bool      `json:"used"`
}

// AdminService holds instance-wide settings and invitations (admins only,
// EFORBIDDEN otherwise), except Settings which anyone may read.
type AdminService interface {
	Settings(ctx context.Context) (*Settings, error)
	UpdateSettings(ctx context.Context, s Settings) error
	// CreateInvite returns an invitation whose Code is shown once.
	CreateInvite(ctx context.Context, ttl time.Duration) (*Invite, error)
	FindInvites(ctx context.Context) ([]*Invite, error)
	DeleteInvite(ctx context.Context, id int64) error
}

// Session kinds.
const (
	SessionWeb = "web" // a browser login (cookie)
	SessionAPI = "api" // a personal API token
)

// Session is a browser session or a personal API token. Both are bearer
// secrets that also unlock the user's data key: the store keeps only a hash
// of the secret and the data key wrapped with a key derived from it.
type Session struct {
	ID       int64      `json:"id"`
	UserID   int64      `json:"-"`
	Kind     string     `json:"kind"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"lastUsed,omitempty"`
	// CSRF is the session's anti-forgery token (web sessions).
	CSRF string `json:"-"`
}

// Lifetime is how long a session lasts: TTL after it was created (0: no
// expiry, API tokens only), or, when Sliding, TTL after it was last used.
type Lifetime struct {
	TTL     time.Duration
	Sliding bool
}

// SessionService creates and checks sessions and API tokens.
type SessionService interface {
	// CreateSession starts a session of kind for the principal in a (which
	// must carry the data key), lasting life, and returns the secret token
	// to hand to the client; it is not stored.
	CreateSession(ctx context.Context, a *Auth, kind, name string, life Lifetime) (token string, s *Session, err error)

	// Authenticate resolves a token to its principal, unwrapping the data
	// key, and records the use (moving a sliding session's expiry).
	// EUNAUTHORIZED when unknown, expired, or the user is disabled.
	Authenticate(ctx context.Context, token string) (*Auth, *Session, error)

	// FindSessions lists the principal's sessions of kind.
	FindSessions(ctx context.Context, kind string) ([]*Session, error)

	// DeleteSession ends one of the principal's sessions (logout, revoke).
	// ENOTFOUND when it is not theirs.
	DeleteSession(ctx context.Context, id int64) error
}
