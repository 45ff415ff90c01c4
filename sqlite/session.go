package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/vault"
)

// SessionService implements myt.SessionService.
type SessionService struct{ db *DB }

var _ myt.SessionService = (*SessionService)(nil)

// NewSessionService returns the session service of db.
func NewSessionService(db *DB) *SessionService { return &SessionService{db: db} }

// Token prefixes make a leaked secret recognisable.
const (
	webTokenPrefix = "myts_"
	apiTokenPrefix = "mytt_"
)

func sessionAAD(userID int64, kind string) []byte {
	return fmt.Appendf(nil, "myt/session/%d/%s", userID, kind)
}

// CreateSession implements myt.SessionService.
func (s *SessionService) CreateSession(ctx context.Context, a *myt.Auth, kind, name string, life myt.Lifetime) (string, *myt.Session, error) {
	ttl := life.TTL
	if a == nil || a.User == nil || len(a.DataKey) != vault.KeySize {
		return "", nil, myt.Errorf(myt.EUNAUTHORIZED, "Sign in again to create a session or token.")
	}
	prefix := webTokenPrefix
	switch kind {
	case myt.SessionWeb:
		if ttl <= 0 {
			return "", nil, errors.New("web sessions must expire")
		}
	case myt.SessionAPI:
		prefix = apiTokenPrefix
	default:
		return "", nil, fmt.Errorf("unknown session kind %q", kind)
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return "", nil, &myt.Error{Code: myt.EINVALID, Message: "Give the token a name of 1-64 characters.", Fields: []myt.FieldError{{Field: "name", Message: "must be 1-64 characters"}}}
	}
	token := vault.NewToken(prefix)
	wrapped, err := vault.Seal(vault.TokenKey(token), a.DataKey, sessionAAD(a.User.ID, kind))
	if err != nil {
		return "", nil, err
	}
	now := s.db.now()
	sess := &myt.Session{UserID: a.User.ID, Kind: kind, Name: name, Created: now.UTC()}
	var expires, idle sql.NullInt64
	if ttl > 0 {
		e := now.Add(ttl).UTC()
		sess.Expires = &e
		expires = sql.NullInt64{Int64: e.UnixMilli(), Valid: true}
		if life.Sliding {
			idle = sql.NullInt64{Int64: ttl.Milliseconds(), Valid: true}
		}
	}
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		// Expired sessions are useless; drop them while we are writing.
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires IS NOT NULL AND expires < ?", now.UnixMilli()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO sessions(user_id, kind, name, token_hash, wrapped_key, created, expires, idle) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			a.User.ID, kind, name, vault.TokenHash(token), wrapped, now.UnixMilli(), expires, idle)
		if err != nil {
			return err
		}
		sess.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return token, sess, nil
}

var errBadToken = &myt.Error{Code: myt.EUNAUTHORIZED, Message: "Your session has ended or the token is not valid: sign in again."}

// Authenticate implements myt.SessionService.
func (s *SessionService) Authenticate(ctx context.Context, token string) (*myt.Auth, *myt.Session, error) {
	if !strings.HasPrefix(token, webTokenPrefix) && !strings.HasPrefix(token, apiTokenPrefix) {
		return nil, nil, errBadToken
	}
	var sess myt.Session
	var created int64
	var expires, lastUsed, idle sql.NullInt64
	var wrapped []byte
	var u userRow
	var uCreated int64
	err := s.db.db.QueryRowContext(ctx, `SELECT s.id, s.kind, s.name, s.created, s.expires, s.last_used, s.idle, s.wrapped_key,
		u.id, u.username, u.admin, u.disabled, u.credentials_lost, u.created
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, vault.TokenHash(token)).Scan(
		&sess.ID, &sess.Kind, &sess.Name, &created, &expires, &lastUsed, &idle, &wrapped,
		&u.ID, &u.Username, &u.Admin, &u.Disabled, &u.CredentialsLost, &uCreated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, errBadToken
	} else if err != nil {
		return nil, nil, err
	}
	now := s.db.now()
	if u.Disabled || (expires.Valid && expires.Int64 < now.UnixMilli()) {
		return nil, nil, errBadToken
	}
	dataKey, err := vault.Open(vault.TokenKey(token), wrapped, sessionAAD(u.ID, sess.Kind))
	if err != nil {
		return nil, nil, errBadToken
	}
	sess.UserID, sess.Created = u.ID, fromMS(created)
	sess.CSRF = vault.CSRFToken(token)
	// Record use at most once a minute: reads should not turn into writes.
	// A sliding session then expires idle after this use.
	if !lastUsed.Valid || now.UnixMilli()-lastUsed.Int64 > 60_000 {
		if idle.Valid {
			expires.Int64 = now.UnixMilli() + idle.Int64
			sess.Expires = fromNullMS(expires)
		}
		if _, err := s.db.db.ExecContext(ctx, "UPDATE sessions SET last_used = ?, expires = ? WHERE id = ?", now.UnixMilli(), expires, sess.ID); err != nil {
			s.db.log.Warn("record session use", "err", err)
		}
		lastUsed = sql.NullInt64{Int64: now.UnixMilli(), Valid: true}
	}
	sess.Expires, sess.LastUsed = fromNullMS(expires), fromNullMS(lastUsed)
	u.Created = fromMS(uCreated)
	user := u.User
	return &myt.Auth{User: &user, DataKey: dataKey, SessionID: sess.ID}, &sess, nil
}

// FindSessions implements myt.SessionService.
func (s *SessionService) FindSessions(ctx context.Context, kind string) ([]*myt.Session, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.db.QueryContext(ctx, "SELECT id, kind, name, created, expires, last_used FROM sessions WHERE user_id = ? AND kind = ? AND (expires IS NULL OR expires >= ?) ORDER BY id DESC",
		a.User.ID, kind, s.db.nowMS())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*myt.Session
	for rows.Next() {
		sess := myt.Session{UserID: a.User.ID}
		var created int64
		var expires, lastUsed sql.NullInt64
		if err := rows.Scan(&sess.ID, &sess.Kind, &sess.Name, &created, &expires, &lastUsed); err != nil {
			return nil, err
		}
		sess.Created, sess.Expires, sess.LastUsed = fromMS(created), fromNullMS(expires), fromNullMS(lastUsed)
		out = append(out, &sess)
	}
	return out, rows.Err()
}

// DeleteSession implements myt.SessionService.
func (s *SessionService) DeleteSession(ctx context.Context, id int64) error {
	a, err := principal(ctx)
	if err != nil {
		return err
	}
	res, err := s.db.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = ? AND user_id = ?", id, a.User.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return myt.Errorf(myt.ENOTFOUND, "Token not found.")
	}
	return nil
}
