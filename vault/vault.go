// Package vault holds MyT's cryptography: password hashing, the per-user
// data keys that seal credentials, the server key that seals platform
// operational secrets, and the token-derived keys of sessions.
//
// The scheme (DESIGN.md, "Vault"):
//
//   - A password is stored only as an argon2id hash (PHC string).
//   - Each user has a random 256-bit data key. A locking key is derived from
//     the password with argon2id and its own salt; it wraps the data key
//     with AES-256-GCM, bound to the user's id.
//   - Credentials are sealed with the data key (AES-256-GCM), bound to their
//     row by the additional data, so a ciphertext moved to another row does
//     not open.
//   - A session or API token is 256 random bits; the store keeps its
//     SHA-256 and the data key wrapped with a key derived from the token
//     (HKDF-SHA256), so a copy of the database unlocks nothing.
//   - Platform operational secrets are sealed with the server key, kept in a
//     0600 file in the data dir (or MYT_SERVER_KEY), so monitoring works
//     while users are away.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of every symmetric key: AES-256.
const KeySize = 32

// ErrOpen is returned when a sealed value does not open: wrong key, wrong
// binding (additional data) or tampered bytes. The three are
// indistinguishable on purpose.
var ErrOpen = errors.New("vault: sealed value does not open with this key")

// Params are argon2id cost parameters.
type Params struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultParams follow OWASP's argon2id recommendation (19 MiB, 2
// iterations, 1 lane): about 30 ms here, paid twice per login (hash check,
// then key derivation).
var DefaultParams = Params{Time: 2, Memory: 19 * 1024, Threads: 1}

const saltSize = 16

// slots bounds the argon2id runs in flight in this process (19 MiB each
// with DefaultParams): every path that hashes a password — sign-in, setup,
// a password change, an admin creating a user, a token unlocking a key —
// waits for one, so memory stays bounded however many arrive at once.
// (Sign-in answers 429 before it gets here when it would have to wait
// long; the other paths need a signed-in user and queue.)
var slots = make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))

// idKey is argon2.IDKey in one of the slots.
func idKey(password, salt []byte, p Params, size uint32) []byte {
	slots <- struct{}{}
	defer func() { <-slots }()
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, size)
}

// NewKey returns a random key.
func NewKey() []byte { return random(KeySize) }

// random returns n bytes from crypto/rand, whose Read never returns an
// error (it crashes the program if the system has no randomness).
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// HashPassword returns the argon2id PHC string of password with a fresh salt.
func HashPassword(password string, p Params) string {
	salt := random(saltSize)
	sum := idKey([]byte(password), salt, p, KeySize)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// VerifyPassword reports whether password matches the PHC string encoded. It
// returns an error only when encoded is malformed.
func VerifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("vault: not an argon2id hash")
	}
	var version int
	var p Params
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("vault: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, fmt.Errorf("vault: bad argon2 parameters: %w", err)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("vault: bad salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errors.New("vault: bad hash")
	}
	got := idKey([]byte(password), salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NewSalt returns a fresh salt for DeriveKey.
func NewSalt() []byte { return random(saltSize) }

// DeriveKey derives a locking key from a password with argon2id. Its salt
// must not be the password hash's salt.
func DeriveKey(password string, salt []byte, p Params) []byte {
	return idKey([]byte(password), salt, p, KeySize)
}

// TokenKey derives the key that wraps a data key for a session or API token.
// Tokens carry 256 random bits, so a fast KDF is sound here.
func TokenKey(token string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(token), nil, "myt session data key v1", KeySize)
	if err != nil {
		panic("vault: hkdf: " + err.Error()) // only for impossible lengths
	}
	return k
}

// CSRFToken returns the anti-forgery token of a web session: derived from
// the session's secret, so it survives restarts and needs no storage, and
// reveals nothing about the secret.
func CSRFToken(token string) string {
	k, err := hkdf.Key(sha256.New, []byte(token), nil, "myt csrf v1", 24)
	if err != nil {
		panic("vault: hkdf: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(k)
}

// TokenHash returns the lookup hash of a session or API token.
func TokenHash(token string) []byte {
	h := sha256.Sum256([]byte("myt token v1\x00" + token))
	return h[:]
}

// NewToken returns a bearer token: 256 random bits, URL-safe, with a prefix
// that makes leaked tokens easy to recognise (and to scan for).
func NewToken(prefix string) string {
	return prefix + base64.RawURLEncoding.EncodeToString(random(32))
}

// sealVersion prefixes every sealed value so the format can evolve.
const sealVersion = 1

// Seal encrypts plaintext with key (AES-256-GCM, random nonce) bound to
// aad. The result is version || nonce || ciphertext+tag.
func Seal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1, 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	out = append(out, random(aead.NonceSize())...)
	return aead.Seal(out, out[1:], plaintext, aad), nil
}

// Open decrypts a value made by Seal with the same key and aad, or returns
// ErrOpen.
func Open(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrOpen
	}
	nonce := sealed[1 : 1+aead.NonceSize()]
	pt, err := aead.Open(nil, nonce, sealed[1+aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("vault: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Fingerprint identifies a key without revealing it (first 8 bytes of its
// SHA-256, hex), so a store can tell that it was given the wrong server key.
func Fingerprint(key []byte) string {
	h := sha256.Sum256(append([]byte("myt key fingerprint v1\x00"), key...))
	return fmt.Sprintf("%x", h[:8])
}
