package myt

import (
	"context"
	"log/slog"
	"regexp"
	"time"
)

// Credential is a saved set of credentials for a provider. Public holds the
// fields that are not secret (an access key id, a region, a host); the
// secret fields are sealed in the vault and only ever returned masked.
type Credential struct {
	ID      int64             `json:"id"`
	UserID  int64             `json:"-"`
	Name    string            `json:"name"`
	Kind    string            `json:"kind"`
	Public  map[string]string `json:"public"`
	Masked  map[string]string `json:"masked,omitempty"` // secret field → masked value
	Created time.Time         `json:"created"`
	// Locked is set when the credential was sealed with a data key that an
	// admin password reset destroyed: it must be entered again.
	Locked bool `json:"locked"`
}

var credentialNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// CredentialNameRule says in words what ValidCredentialName accepts.
const CredentialNameRule = "must be 1-63 characters of letters, digits, '.', '_' and '-'"

// ValidCredentialName reports whether name may name a credential. The
// credential store and a design's spec.target.credentials share the rule.
func ValidCredentialName(name string) bool { return credentialNameRE.MatchString(name) }

// Secret is the secret part of a credential (field name → value). It never
// prints its values, not even through slog.
type Secret map[string]string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// String implements fmt.Stringer so %v never shows values.
func (Secret) String() string { return "REDACTED" }

// CredentialFilter selects credentials of the principal.
type CredentialFilter struct {
	ID   *int64
	Name *string
	Kind *string
}

// CredentialService stores credentials, sealed with the principal's data
// key. Every method acts only on the principal's own credentials: another
// user's id is ENOTFOUND, whoever asks (admins too).
type CredentialService interface {
	// CreateCredential validates c.Public and secret for c.Kind (EINVALID
	// with a message per field), seals secret and stores it. ECONFLICT when
	// the name is taken.
	CreateCredential(ctx context.Context, c *Credential, secret Secret) error
	FindCredentials(ctx context.Context, f CredentialFilter) ([]*Credential, error)
	FindCredentialByID(ctx context.Context, id int64) (*Credential, error)
	DeleteCredential(ctx context.Context, id int64) error
	// OpenCredential returns the secret fields (for deploy jobs). EINVALID
	// when the credential is locked.
	OpenCredential(ctx context.Context, id int64) (Secret, error)
}
