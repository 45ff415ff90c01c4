package httpapi

import "github.com/myt-iot/myt"

// Request and response bodies, shared by the server and the client.

// StatusResponse answers GET /api/v1/status.
type StatusResponse struct {
	Version string `json:"version"`
	// NeedsSetup is true until the first account exists.
	NeedsSetup bool `json:"needsSetup"`
}

// LoginRequest is the body of POST /api/v1/login and POST /api/v1/setup.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// TokenName names the API token that login creates.
	TokenName string `json:"tokenName,omitempty"`
}

// TokenResponse carries a newly created API token. Token is shown once.
type TokenResponse struct {
	Token   string       `json:"token"`
	Session *myt.Session `json:"session"`
	User    *myt.User    `json:"user,omitempty"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
}

// PasswordRequest is the body of POST /api/v1/me/password.
type PasswordRequest struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// CredentialRequest is the body of POST /api/v1/credentials.
type CredentialRequest struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	Public map[string]string `json:"public"`
	Secret map[string]string `json:"secret"`
}

// UserRequest is the body of POST /api/v1/users.
type UserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Admin    bool   `json:"admin"`
}

// UserPatch is the body of PATCH /api/v1/users/{id}.
type UserPatch struct {
	Admin    *bool `json:"admin,omitempty"`
	Disabled *bool `json:"disabled,omitempty"`
}

// ResetRequest is the body of POST /api/v1/users/{id}/password.
type ResetRequest struct {
	Password string `json:"password"`
}

// InviteRequest is the body of POST /api/v1/invites.
type InviteRequest struct {
	// TTL is a Go duration such as "72h"; default 7 days.
	TTL string `json:"ttl,omitempty"`
}

// ValidateResponse answers POST /api/v1/designs/validate.
type ValidateResponse struct {
	Design *myt.Design `json:"design"`
}
