package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/vault"
)

// PlatformSecrets stores a platform's operational secrets (generated
// passwords, SSH keys, CA keys), sealed with the server key and bound to
// (platform, name). Deploy jobs and monitors use it; they run on behalf of
// the server, not of a signed-in user.
type PlatformSecrets struct{ db *DB }

// NewPlatformSecrets returns the platform secret store of db.
func NewPlatformSecrets(db *DB) *PlatformSecrets { return &PlatformSecrets{db: db} }

func platformSecretAAD(platformID int64, name string) []byte {
	return fmt.Appendf(nil, "myt/platform/%d/secret/%s", platformID, name)
}

// Put seals value under name for the platform, replacing any earlier value.
func (s *PlatformSecrets) Put(ctx context.Context, platformID int64, name string, value []byte) error {
	sealed, err := vault.Seal(s.db.serverKey, value, platformSecretAAD(platformID, name))
	if err != nil {
		return err
	}
	_, err = s.db.db.ExecContext(ctx, "INSERT INTO platform_secrets(platform_id, name, sealed) VALUES (?, ?, ?) ON CONFLICT(platform_id, name) DO UPDATE SET sealed = excluded.sealed",
		platformID, name, sealed)
	return err
}

// Get returns the secret name of the platform. ENOTFOUND when absent.
func (s *PlatformSecrets) Get(ctx context.Context, platformID int64, name string) ([]byte, error) {
	var sealed []byte
	err := s.db.db.QueryRowContext(ctx, "SELECT sealed FROM platform_secrets WHERE platform_id = ? AND name = ?", platformID, name).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, myt.Errorf(myt.ENOTFOUND, "Secret %s not found.", name)
	} else if err != nil {
		return nil, err
	}
	v, err := vault.Open(s.db.serverKey, sealed, platformSecretAAD(platformID, name))
	if err != nil {
		return nil, fmt.Errorf("open platform %d secret %s: %w", platformID, name, err)
	}
	return v, nil
}

// RotateServerKey re-seals every value sealed with the current server key
// with newKey, and records newKey's fingerprint, in one transaction: either
// everything is sealed with the new key or nothing changed. The caller
// stores newKey (vault.WriteKeyFile) after this returns nil; until then the
// database refuses the old key, and the caller must keep newKey safe.
func (db *DB) RotateServerKey(ctx context.Context, newKey []byte) (resealed int, err error) {
	if len(newKey) != vault.KeySize {
		return 0, errors.New("rotate: new key has the wrong size")
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		type row struct {
			platformID int64
			name       string
			sealed     []byte
		}
		var all []row
		rows, err := tx.QueryContext(ctx, "SELECT platform_id, name, sealed FROM platform_secrets")
		if err != nil {
			return err
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.platformID, &r.name, &r.sealed); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			aad := platformSecretAAD(r.platformID, r.name)
			pt, err := vault.Open(db.serverKey, r.sealed, aad)
			if err != nil {
				return fmt.Errorf("platform %d secret %s does not open with the current server key: %w", r.platformID, r.name, err)
			}
			sealed, err := vault.Seal(newKey, pt, aad)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE platform_secrets SET sealed = ? WHERE platform_id = ? AND name = ?", sealed, r.platformID, r.name); err != nil {
				return err
			}
		}
		resealed = len(all)
		_, err = tx.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", vault.Fingerprint(newKey), metaServerKey)
		return err
	})
	if err != nil {
		return 0, err
	}
	db.serverKey = newKey
	return resealed, nil
}

// Services are all the services of one database, ready to wire.
type Services struct {
	Users       *UserService
	Sessions    *SessionService
	Credentials *CredentialService
	Platforms   *PlatformService
	Admin       *AdminService
	Secrets     *PlatformSecrets
}

// NewServices returns every service of db.
func NewServices(db *DB) *Services {
	return &Services{
		Users:       NewUserService(db),
		Sessions:    NewSessionService(db),
		Credentials: NewCredentialService(db),
		Platforms:   NewPlatformService(db),
		Admin:       NewAdminService(db),
		Secrets:     NewPlatformSecrets(db),
	}
}
