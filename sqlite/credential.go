package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
	"github.com/myt-iot/myt/vault"
)

// CredentialService implements myt.CredentialService.
type CredentialService struct{ db *DB }

var _ myt.CredentialService = (*CredentialService)(nil)

// NewCredentialService returns the credential service of db.
func NewCredentialService(db *DB) *CredentialService { return &CredentialService{db: db} }

// credentialAAD binds a sealed credential to its row and owner: moved to
// another row or user, it does not open.
func credentialAAD(userID, id int64) []byte {
	return fmt.Appendf(nil, "myt/credential/%d/%d", userID, id)
}

// CreateCredential implements myt.CredentialService.
func (s *CredentialService) CreateCredential(ctx context.Context, c *myt.Credential, secret myt.Secret) error {
	a, err := keyedPrincipal(ctx)
	if err != nil {
		return err
	}
	pub, sec, err := credential.Normalize(c.Name, c.Kind, c.Public, secret)
	if err != nil {
		return err
	}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return err
	}
	secJSON, err := json.Marshal(map[string]string(sec))
	if err != nil {
		return err
	}
	now := s.db.nowMS()
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		var gen int64
		if err := tx.QueryRowContext(ctx, "SELECT key_gen FROM users WHERE id = ?", a.User.ID).Scan(&gen); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO credentials(user_id, name, kind, public, sealed, key_gen, created) VALUES (?, ?, ?, ?, x'', ?, ?)",
			a.User.ID, c.Name, c.Kind, string(pubJSON), gen, now)
		if isUnique(err) {
			return &myt.Error{Code: myt.ECONFLICT, Message: fmt.Sprintf("You already have a credential named %q.", c.Name), Fields: []myt.FieldError{{Field: "name", Message: "is taken"}}}
		} else if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		sealed, err := vault.Seal(a.DataKey, secJSON, credentialAAD(a.User.ID, id))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE credentials SET sealed = ? WHERE id = ?", sealed, id); err != nil {
			return err
		}
		c.ID, c.UserID = id, a.User.ID
		return nil
	})
	if err != nil {
		return err
	}
	c.Public, c.Created = pub, fromMS(now)
	c.Masked = mask(sec)
	s.db.log.Info("credential saved", "user", a.User.Username, "credential", c.Name, "kind", c.Kind)
	return nil
}

func mask(sec myt.Secret) map[string]string {
	m := make(map[string]string, len(sec))
	for k, v := range sec {
		m[k] = credential.Mask(v)
	}
	return m
}

type credRow struct {
	myt.Credential
	sealed []byte
}

func (s *CredentialService) find(ctx context.Context, a *myt.Auth, f myt.CredentialFilter) ([]*credRow, error) {
	where, args := []string{"c.user_id = ?"}, []any{a.User.ID}
	if f.ID != nil {
		where, args = append(where, "c.id = ?"), append(args, *f.ID)
	}
	if f.Name != nil {
		where, args = append(where, "c.name = ?"), append(args, *f.Name)
	}
	if f.Kind != nil {
		where, args = append(where, "c.kind = ?"), append(args, *f.Kind)
	}
	rows, err := s.db.db.QueryContext(ctx, `SELECT c.id, c.name, c.kind, c.public, c.sealed, c.created, c.key_gen < u.key_gen
		FROM credentials c JOIN users u ON u.id = c.user_id WHERE `+strings.Join(where, " AND ")+" ORDER BY c.name", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*credRow
	for rows.Next() {
		c := &credRow{Credential: myt.Credential{UserID: a.User.ID}}
		var pub string
		var created int64
		if err := rows.Scan(&c.ID, &c.Name, &c.Kind, &pub, &c.sealed, &created, &c.Locked); err != nil {
			return nil, err
		}
		c.Created = fromMS(created)
		if err := json.Unmarshal([]byte(pub), &c.Public); err != nil {
			return nil, fmt.Errorf("credential %d: %w", c.ID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *CredentialService) open(a *myt.Auth, c *credRow) (myt.Secret, error) {
	if c.Locked {
		return nil, myt.Errorf(myt.EINVALID, "The credential %q was sealed with a key that a password reset destroyed: enter it again.", c.Name)
	}
	pt, err := vault.Open(a.DataKey, c.sealed, credentialAAD(a.User.ID, c.ID))
	if err != nil {
		return nil, fmt.Errorf("open credential %d: %w", c.ID, err)
	}
	var sec myt.Secret
	if err := json.Unmarshal(pt, &sec); err != nil {
		return nil, fmt.Errorf("credential %d: %w", c.ID, err)
	}
	return sec, nil
}

// FindCredentials implements myt.CredentialService. Secret fields come back
// masked.
func (s *CredentialService) FindCredentials(ctx context.Context, f myt.CredentialFilter) ([]*myt.Credential, error) {
	a, err := keyedPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.find(ctx, a, f)
	if err != nil {
		return nil, err
	}
	out := make([]*myt.Credential, 0, len(rows))
	for _, r := range rows {
		if !r.Locked {
			sec, err := s.open(a, r)
			if err != nil {
				return nil, err
			}
			r.Masked = mask(sec)
		}
		out = append(out, &r.Credential)
	}
	return out, nil
}

// FindCredentialByID implements myt.CredentialService.
func (s *CredentialService) FindCredentialByID(ctx context.Context, id int64) (*myt.Credential, error) {
	cs, err := s.FindCredentials(ctx, myt.CredentialFilter{ID: &id})
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, myt.Errorf(myt.ENOTFOUND, "Credential not found.")
	}
	return cs[0], nil
}

// DeleteCredential implements myt.CredentialService. A credential that a
// platform's design names cannot be deleted (ECONFLICT).
func (s *CredentialService) DeleteCredential(ctx context.Context, id int64) error {
	a, err := principal(ctx)
	if err != nil {
		return err
	}
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, "SELECT name FROM credentials WHERE id = ? AND user_id = ?", id, a.User.ID).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return myt.Errorf(myt.ENOTFOUND, "Credential not found.")
		} else if err != nil {
			return err
		}
		var users []string
		rows, err := tx.QueryContext(ctx, "SELECT name FROM platforms WHERE user_id = ? AND json_extract(design, '$.spec.target.credentials') = ? AND status != ?", a.User.ID, name, myt.StatusDestroyed)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return err
			}
			users = append(users, p)
		}
		rows.Close()
		if len(users) > 0 {
			return myt.Errorf(myt.ECONFLICT, "The credential %q is used by platform(s) %s: change or delete them first.", name, strings.Join(users, ", "))
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM credentials WHERE id = ? AND user_id = ?", id, a.User.ID)
		return err
	})
}

// OpenCredential implements myt.CredentialService.
func (s *CredentialService) OpenCredential(ctx context.Context, id int64) (myt.Secret, error) {
	a, err := keyedPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.find(ctx, a, myt.CredentialFilter{ID: &id})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, myt.Errorf(myt.ENOTFOUND, "Credential not found.")
	}
	return s.open(a, rows[0])
}
