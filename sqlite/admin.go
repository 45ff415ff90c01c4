package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/vault"
)

// AdminService implements myt.AdminService.
type AdminService struct{ db *DB }

var _ myt.AdminService = (*AdminService)(nil)

// NewAdminService returns the admin service of db.
func NewAdminService(db *DB) *AdminService { return &AdminService{db: db} }

const metaOpenSignup = "open_signup"

func openSignup(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (bool, error) {
	var v string
	err := q.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", metaOpenSignup).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return v == "true", err
}

// Settings implements myt.AdminService; anyone may read them (the sign-up
// page needs to know whether it is open).
func (s *AdminService) Settings(ctx context.Context) (*myt.Settings, error) {
	open, err := openSignup(ctx, s.db.db)
	if err != nil {
		return nil, err
	}
	return &myt.Settings{OpenSignup: open}, nil
}

// UpdateSettings implements myt.AdminService.
func (s *AdminService) UpdateSettings(ctx context.Context, st myt.Settings) error {
	a, err := adminPrincipal(ctx)
	if err != nil {
		return err
	}
	v := "false"
	if st.OpenSignup {
		v = "true"
	}
	_, err = s.db.db.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", metaOpenSignup, v)
	if err == nil {
		s.db.log.Info("settings updated", "open_signup", st.OpenSignup, "by", a.User.Username)
	}
	return err
}

// CreateInvite implements myt.AdminService.
func (s *AdminService) CreateInvite(ctx context.Context, ttl time.Duration) (*myt.Invite, error) {
	a, err := adminPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return nil, &myt.Error{Code: myt.EINVALID, Message: "An invitation lasts from a minute to 30 days.", Fields: []myt.FieldError{{Field: "ttl", Message: "must be between 1m and 720h"}}}
	}
	code := vault.NewToken("inv_")
	now := s.db.now()
	inv := &myt.Invite{Code: code, Created: now.UTC(), Expires: now.Add(ttl).UTC()}
	res, err := s.db.db.ExecContext(ctx, "INSERT INTO invites(code_hash, created_by, created, expires) VALUES (?, ?, ?, ?)",
		vault.TokenHash(code), a.User.ID, now.UnixMilli(), now.Add(ttl).UnixMilli())
	if err != nil {
		return nil, err
	}
	inv.ID, err = res.LastInsertId()
	return inv, err
}

// FindInvites implements myt.AdminService.
func (s *AdminService) FindInvites(ctx context.Context) ([]*myt.Invite, error) {
	if _, err := adminPrincipal(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.db.QueryContext(ctx, "SELECT id, created, expires, used_by IS NOT NULL FROM invites ORDER BY id DESC")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*myt.Invite
	for rows.Next() {
		var inv myt.Invite
		var created, expires int64
		if err := rows.Scan(&inv.ID, &created, &expires, &inv.Used); err != nil {
			return nil, err
		}
		inv.Created, inv.Expires = fromMS(created), fromMS(expires)
		out = append(out, &inv)
	}
	return out, rows.Err()
}

// DeleteInvite implements myt.AdminService.
func (s *AdminService) DeleteInvite(ctx context.Context, id int64) error {
	if _, err := adminPrincipal(ctx); err != nil {
		return err
	}
	res, err := s.db.db.ExecContext(ctx, "DELETE FROM invites WHERE id = ?", id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return myt.Errorf(myt.ENOTFOUND, "Invitation not found.")
	}
	return nil
}
