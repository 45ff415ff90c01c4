package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/vault"
)

// UserService implements myt.UserService.
type UserService struct{ db *DB }

var _ myt.UserService = (*UserService)(nil)

// NewUserService returns the user service of db.
func NewUserService(db *DB) *UserService { return &UserService{db: db} }

func checkPassword(field, pw string) *myt.FieldError {
	switch {
	case len(pw) < myt.MinPasswordLen:
		return &myt.FieldError{Field: field, Message: fmt.Sprintf("must be at least %d characters", myt.MinPasswordLen)}
	case len(pw) > myt.MaxPasswordLen:
		return &myt.FieldError{Field: field, Message: fmt.Sprintf("must be at most %d characters", myt.MaxPasswordLen)}
	}
	return nil
}

func userKeyAAD(userID, gen int64) []byte {
	return fmt.Appendf(nil, "myt/user/%d/data-key/%d", userID, gen)
}

// CreateUser implements myt.UserService.
func (s *UserService) CreateUser(ctx context.Context, in myt.UserCreate) (*myt.User, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	// The expensive work happens outside the write transaction.
	hash := vault.HashPassword(in.Password, s.db.params)
	salt := vault.NewSalt()
	lockKey := vault.DeriveKey(in.Password, salt, s.db.params)
	dataKey := vault.NewKey()
	caller := myt.AuthFromContext(ctx)

	u := &myt.User{Username: in.Username, Admin: in.Admin, Created: fromMS(s.db.nowMS())}
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
			return err
		}
		var inviteID int64
		switch {
		case n == 0:
			u.Admin = true // the first account administers the instance
		case caller != nil && caller.User != nil && caller.User.Admin:
		case in.Invite != "":
			u.Admin = false
			var expires int64
			err := tx.QueryRowContext(ctx, "SELECT id, expires FROM invites WHERE code_hash = ? AND used_by IS NULL", vault.TokenHash(in.Invite)).Scan(&inviteID, &expires)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && expires < s.db.nowMS()) {
				return &myt.Error{Code: myt.EFORBIDDEN, Message: "This invitation is not valid: it was used, revoked or has expired. Ask your administrator for a new one."}
			} else if err != nil {
				return err
			}
		default:
			open, err := openSignup(ctx, tx)
			if err != nil {
				return err
			}
			if !open {
				return myt.Errorf(myt.EFORBIDDEN, "Sign-up needs an invitation from an administrator.")
			}
			u.Admin = false
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO users(username, password_hash, key_salt, wrapped_key, admin, created) VALUES (?, ?, ?, x'', ?, ?)`,
			in.Username, hash, salt, u.Admin, s.db.nowMS())
		if isUnique(err) {
			return &myt.Error{Code: myt.ECONFLICT, Message: "That username is taken.", Fields: []myt.FieldError{{Field: "username", Message: "is taken"}}}
		} else if err != nil {
			return err
		}
		if u.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		wrapped, err := vault.Seal(lockKey, dataKey, userKeyAAD(u.ID, 1))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE users SET wrapped_key = ? WHERE id = ?", wrapped, u.ID); err != nil {
			return err
		}
		if inviteID != 0 {
			_, err = tx.ExecContext(ctx, "UPDATE invites SET used_by = ? WHERE id = ?", u.ID, inviteID)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.db.log.Info("user created", "user", u.Username, "admin", u.Admin)
	return u, nil
}

type userRow struct {
	myt.User
	hash    string
	salt    []byte
	wrapped []byte
	keyGen  int64
}

const userCols = "id, username, admin, disabled, credentials_lost, created, password_hash, key_salt, wrapped_key, key_gen"

func scanUser(row interface{ Scan(...any) error }) (*userRow, error) {
	var u userRow
	var created int64
	err := row.Scan(&u.ID, &u.Username, &u.Admin, &u.Disabled, &u.CredentialsLost, &created, &u.hash, &u.salt, &u.wrapped, &u.keyGen)
	if err != nil {
		return nil, err
	}
	u.Created = fromMS(created)
	return &u, nil
}

func (s *UserService) byID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (*userRow, error) {
	u, err := scanUser(q.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, myt.Errorf(myt.ENOTFOUND, "User not found.")
	}
	return u, err
}

// dummySalt salts the derivation that makes a login for an unknown name
// cost what a wrong password costs. Nothing is compared against its result.
var dummySalt = []byte("myt unknown user")

var errBadLogin = &myt.Error{Code: myt.EUNAUTHORIZED, Message: "Wrong username or password."}

// Authenticate implements myt.UserService.
func (s *UserService) Authenticate(ctx context.Context, username, password string) (*myt.Auth, error) {
	u, err := scanUser(s.db.db.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE username = ?", username))
	if errors.Is(err, sql.ErrNoRows) {
		// A wrong password costs one argon2id run with the store's
		// params; an unknown name costs the same, so the time of a
		// refusal does not tell which names exist.
		vault.DeriveKey(password, dummySalt, s.db.params)
		return nil, errBadLogin
	} else if err != nil {
		return nil, err
	}
	ok, err := vault.VerifyPassword(u.hash, password)
	if err != nil {
		return nil, fmt.Errorf("verify password of user %d: %w", u.ID, err)
	}
	if !ok || u.Disabled {
		return nil, errBadLogin
	}
	dataKey, err := vault.Open(vault.DeriveKey(password, u.salt, s.db.params), u.wrapped, userKeyAAD(u.ID, u.keyGen))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of user %d: %w", u.ID, err)
	}
	user := u.User
	return &myt.Auth{User: &user, DataKey: dataKey}, nil
}

// CountUsers implements myt.UserService.
func (s *UserService) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.db.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, err
}

// FindUserByID implements myt.UserService.
func (s *UserService) FindUserByID(ctx context.Context, id int64) (*myt.User, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if a.User.ID != id && !a.User.Admin {
		return nil, myt.Errorf(myt.ENOTFOUND, "User not found.")
	}
	u, err := s.byID(ctx, s.db.db, id)
	if err != nil {
		return nil, err
	}
	return &u.User, nil
}

// FindUsers implements myt.UserService.
func (s *UserService) FindUsers(ctx context.Context) ([]*myt.User, error) {
	if _, err := adminPrincipal(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.db.QueryContext(ctx, "SELECT "+userCols+" FROM users ORDER BY username")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []*myt.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, &u.User)
	}
	return users, rows.Err()
}

// UpdateUser implements myt.UserService.
func (s *UserService) UpdateUser(ctx context.Context, id int64, upd myt.UserUpdate) (*myt.User, error) {
	a, err := adminPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if a.User.ID == id && ((upd.Disabled != nil && *upd.Disabled) || (upd.Admin != nil && !*upd.Admin)) {
		return nil, myt.Errorf(myt.EINVALID, "You cannot disable yourself or remove your own administrator role; ask another administrator.")
	}
	var out *myt.User
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		u, err := s.byID(ctx, tx, id)
		if err != nil {
			return err
		}
		if upd.Admin != nil {
			u.Admin = *upd.Admin
		}
		if upd.Disabled != nil {
			u.Disabled = *upd.Disabled
		}
		if _, err := tx.ExecContext(ctx, "UPDATE users SET admin = ?, disabled = ? WHERE id = ?", u.Admin, u.Disabled, id); err != nil {
			return err
		}
		if u.Disabled {
			if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", id); err != nil {
				return err
			}
		}
		out = &u.User
		return nil
	})
	if err == nil {
		s.db.log.Info("user updated", "user", out.Username, "admin", out.Admin, "disabled", out.Disabled, "by", a.User.Username)
	}
	return out, err
}

// ChangePassword implements myt.UserService. The principal already holds
// its data key, so the old password is only checked against its hash and
// the key is re-wrapped: one argon2id run for the check, two for the new
// password.
func (s *UserService) ChangePassword(ctx context.Context, old, new string) error {
	a, err := keyedPrincipal(ctx)
	if err != nil {
		return err
	}
	if fe := checkPassword("new_password", new); fe != nil {
		return &myt.Error{Code: myt.EINVALID, Message: "The new password is not valid.", Fields: []myt.FieldError{*fe}}
	}
	wrongOld := &myt.Error{Code: myt.EUNAUTHORIZED, Message: "The current password is wrong.", Fields: []myt.FieldError{{Field: "old_password", Message: "is wrong"}}}
	u, err := s.byID(ctx, s.db.db, a.User.ID)
	if err != nil {
		return err
	}
	ok, err := vault.VerifyPassword(u.hash, old)
	if err != nil {
		return fmt.Errorf("verify password of user %d: %w", u.ID, err)
	}
	if !ok || u.Disabled {
		return wrongOld
	}
	hash := vault.HashPassword(new, s.db.params)
	salt := vault.NewSalt()
	lockKey := vault.DeriveKey(new, salt, s.db.params)
	wrapped, err := vault.Seal(lockKey, a.DataKey, userKeyAAD(u.ID, u.keyGen))
	if err != nil {
		return err
	}
	// The hash and key generation checked above must still be the row's:
	// an admin reset in between replaces the data key, and the principal's
	// would then be the wrong one to wrap.
	var ended int64
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ?, key_salt = ?, wrapped_key = ? WHERE id = ? AND password_hash = ? AND key_gen = ?",
			hash, salt, wrapped, u.ID, u.hash, u.keyGen)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return wrongOld
		}
		// A changed password is often a suspected leak: every other
		// session and API token ends, only the one making the change
		// goes on.
		res, err = tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ? AND id != ?", u.ID, a.SessionID)
		if err != nil {
			return err
		}
		ended, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	s.db.log.Info("password changed", "user", a.User.Username, "sessions_ended", ended)
	return nil
}

// ResetPassword implements myt.UserService.
func (s *UserService) ResetPassword(ctx context.Context, id int64, password string) error {
	a, err := adminPrincipal(ctx)
	if err != nil {
		return err
	}
	if a.User.ID == id {
		return myt.Errorf(myt.EINVALID, "Change your own password on your account page: a reset would lose your saved credentials.")
	}
	if fe := checkPassword("password", password); fe != nil {
		return &myt.Error{Code: myt.EINVALID, Message: "The password is not valid.", Fields: []myt.FieldError{*fe}}
	}
	hash := vault.HashPassword(password, s.db.params)
	salt := vault.NewSalt()
	lockKey := vault.DeriveKey(password, salt, s.db.params)
	var username string
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		u, err := s.byID(ctx, tx, id)
		if err != nil {
			return err
		}
		username = u.Username
		gen := u.keyGen + 1
		// The old data key is wrapped with the old password, which nobody
		// here knows: it is gone, and with it the user's credentials.
		wrapped, err := vault.Seal(lockKey, vault.NewKey(), userKeyAAD(u.ID, gen))
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM credentials WHERE user_id = ?", id).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, key_salt = ?, wrapped_key = ?, key_gen = ?,
			credentials_lost = credentials_lost OR ? WHERE id = ?`, hash, salt, wrapped, gen, n > 0, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", id)
		return err
	})
	if err == nil {
		s.db.log.Info("password reset by admin", "user", username, "by", a.User.Username)
	}
	return err
}

// AcknowledgeLostCredentials implements myt.UserService.
func (s *UserService) AcknowledgeLostCredentials(ctx context.Context) error {
	a, err := principal(ctx)
	if err != nil {
		return err
	}
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM credentials WHERE user_id = ? AND key_gen < (SELECT key_gen FROM users WHERE id = ?)", a.User.ID, a.User.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE users SET credentials_lost = 0 WHERE id = ?", a.User.ID)
		return err
	})
}
