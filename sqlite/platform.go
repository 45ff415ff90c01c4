package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/myt-iot/myt"
)

// PlatformService implements myt.PlatformService.
type PlatformService struct{ db *DB }

var _ myt.PlatformService = (*PlatformService)(nil)

// NewPlatformService returns the platform service of db.
func NewPlatformService(db *DB) *PlatformService { return &PlatformService{db: db} }

// checkDesign validates d, the credential it names and, for a new
// platform (creating), that its name is free, and reports every problem
// at once: a name conflict alone is ECONFLICT, with other problems a field
// of the EINVALID error.
func (s *PlatformService) checkDesign(ctx context.Context, tx *sql.Tx, userID int64, d *myt.Design, creating bool) error {
	if d == nil {
		return myt.Errorf(myt.EINVALID, "A platform needs a design.")
	}
	fields := myt.ErrorFields(d.Validate())
	bad := func(field string) bool {
		for _, f := range fields {
			if f.Field == field {
				return true
			}
		}
		return false
	}
	t := d.Spec.Target
	if t.Provider != myt.ProviderLocal && slices.Contains(myt.Providers, t.Provider) && !bad("spec.target.credentials") {
		fe, err := s.checkCredential(ctx, tx, userID, t)
		if err != nil {
			return err
		}
		if fe != nil {
			fields = append(fields, *fe)
		}
	}
	var taken bool
	if creating && !bad("metadata.name") {
		err := tx.QueryRowContext(ctx, "SELECT EXISTS(SELECT 1 FROM platforms WHERE user_id = ? AND name = ?)", userID, d.Metadata.Name).Scan(&taken)
		if err != nil {
			return err
		}
	}
	switch {
	case taken && len(fields) == 0:
		return nameTaken(d.Metadata.Name)
	case taken:
		fields = append(fields, myt.FieldError{Field: "metadata.name", Message: fmt.Sprintf("%q given; you already have a platform of that name", d.Metadata.Name)})
	}
	return myt.Invalid("The platform design is not valid.", fields)
}

func nameTaken(name string) error {
	return &myt.Error{Code: myt.ECONFLICT, Message: fmt.Sprintf("You already have a platform named %q.", name), Fields: []myt.FieldError{{Field: "metadata.name", Message: "is taken"}}}
}

// checkCredential checks that the user has the credential t names, of
// t's provider; when not, the error lists the ones they have of that kind.
func (s *PlatformService) checkCredential(ctx context.Context, tx *sql.Tx, userID int64, t myt.Target) (*myt.FieldError, error) {
	var kind string
	var locked bool
	err := tx.QueryRowContext(ctx, `SELECT c.kind, c.key_gen < u.key_gen FROM credentials c JOIN users u ON u.id = c.user_id
		WHERE c.user_id = ? AND c.name = ?`, userID, t.Credentials).Scan(&kind, &locked)
	field := func(msg string, args ...any) (*myt.FieldError, error) {
		return &myt.FieldError{Field: "spec.target.credentials", Message: fmt.Sprintf(msg, args...)}, nil
	}
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && kind != t.Provider:
		var names []string
		rows, err := tx.QueryContext(ctx, "SELECT name FROM credentials WHERE user_id = ? AND kind = ? ORDER BY name", userID, t.Provider)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return nil, err
			}
			names = append(names, n)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		have := fmt.Sprintf("you have no %s credential: add one first (`myt creds add %s`, or Credentials → Add)", t.Provider, t.Provider)
		if len(names) > 0 {
			have = fmt.Sprintf("your %s credentials: %s", t.Provider, strings.Join(names, ", "))
		}
		if kind != "" {
			return field("%q is a credential for %s, and the target provider is %s; %s", t.Credentials, kind, t.Provider, have)
		}
		return field("%q given; you have no saved credential of that name; %s", t.Credentials, have)
	case err != nil:
		return nil, err
	case locked:
		return field("%q must be entered again (its key was lost in a password reset)", t.Credentials)
	}
	return nil, nil
}

// CreatePlatform implements myt.PlatformService.
func (s *PlatformService) CreatePlatform(ctx context.Context, d *myt.Design) (*myt.Platform, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	now := s.db.nowMS()
	p := &myt.Platform{UserID: a.User.ID, Status: myt.StatusDesigned, Design: d, Revision: 1, Created: fromMS(now), Updated: fromMS(now)}
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkDesign(ctx, tx, a.User.ID, d, true); err != nil {
			return err
		}
		p.Name = d.Metadata.Name
		doc, err := json.Marshal(d)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO platforms(user_id, name, status, design, revision, created, updated) VALUES (?, ?, ?, ?, 1, ?, ?)",
			a.User.ID, p.Name, p.Status, string(doc), now, now)
		if isUnique(err) {
			return nameTaken(p.Name)
		} else if err != nil {
			return err
		}
		p.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return nil, err
	}
	s.db.log.Info("platform designed", "user", a.User.Username, "platform", p.Name, "provider", d.Spec.Target.Provider, "database", d.Spec.Database.Kind)
	return p, nil
}

func (s *PlatformService) find(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, userID int64, where string, args ...any) ([]*myt.Platform, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, name, status, design, revision, deployed_revision, endpoints, created, updated FROM platforms WHERE user_id = ? "+where+" ORDER BY name",
		append([]any{userID}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*myt.Platform
	for rows.Next() {
		p := &myt.Platform{UserID: userID}
		var doc string
		var endpoints sql.NullString
		var created, updated int64
		if err := rows.Scan(&p.ID, &p.Name, &p.Status, &doc, &p.Revision, &p.DeployedRevision, &endpoints, &created, &updated); err != nil {
			return nil, err
		}
		if endpoints.Valid {
			p.Endpoints = new(myt.Endpoints)
			if err := json.Unmarshal([]byte(endpoints.String), p.Endpoints); err != nil {
				return nil, fmt.Errorf("platform %d endpoints: %w", p.ID, err)
			}
		}
		p.Created, p.Updated = fromMS(created), fromMS(updated)
		p.Design = myt.NewDesign()
		if err := json.Unmarshal([]byte(doc), p.Design); err != nil {
			return nil, fmt.Errorf("platform %d design: %w", p.ID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// FindPlatforms implements myt.PlatformService.
func (s *PlatformService) FindPlatforms(ctx context.Context, f myt.PlatformFilter) ([]*myt.Platform, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if f.Name != nil {
		return s.find(ctx, s.db.db, a.User.ID, "AND name = ?", *f.Name)
	}
	return s.find(ctx, s.db.db, a.User.ID, "")
}

// FindPlatformByID implements myt.PlatformService.
func (s *PlatformService) FindPlatformByID(ctx context.Context, id int64) (*myt.Platform, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := s.find(ctx, s.db.db, a.User.ID, "AND id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, myt.Errorf(myt.ENOTFOUND, "Platform not found.")
	}
	return ps[0], nil
}

// busy are the statuses in which a job owns the platform.
var busy = []string{myt.StatusDeploying, myt.StatusDestroying}

// UpdatePlatform implements myt.PlatformService.
func (s *PlatformService) UpdatePlatform(ctx context.Context, id int64, d *myt.Design) (*myt.Platform, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	var out *myt.Platform
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		ps, err := s.find(ctx, tx, a.User.ID, "AND id = ?", id)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return myt.Errorf(myt.ENOTFOUND, "Platform not found.")
		}
		p := ps[0]
		if slices.Contains(busy, p.Status) {
			return myt.Errorf(myt.ECONFLICT, "The platform is %s; wait until that finishes.", p.Status)
		}
		if err := s.checkDesign(ctx, tx, a.User.ID, d, false); err != nil {
			return err
		}
		if d.Metadata.Name != p.Name {
			return &myt.Error{Code: myt.EINVALID, Message: "A platform cannot be renamed.", Fields: []myt.FieldError{{Field: "metadata.name", Message: fmt.Sprintf("%q given; must stay %q", d.Metadata.Name, p.Name)}}}
		}
		doc, err := json.Marshal(d)
		if err != nil {
			return err
		}
		now := s.db.nowMS()
		if _, err := tx.ExecContext(ctx, "UPDATE platforms SET design = ?, revision = revision + 1, updated = ? WHERE id = ?", string(doc), now, id); err != nil {
			return err
		}
		p.Design, p.Revision, p.Updated = d, p.Revision+1, fromMS(now)
		out = p
		return nil
	})
	return out, err
}

// DeletePlatform implements myt.PlatformService. Only a platform that runs
// nowhere (designed, failed before creating anything, or destroyed) can be
// deleted; a running one must be destroyed first so nothing is orphaned.
func (s *PlatformService) DeletePlatform(ctx context.Context, id int64) error {
	a, err := principal(ctx)
	if err != nil {
		return err
	}
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, "SELECT status FROM platforms WHERE id = ? AND user_id = ?", id, a.User.ID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return myt.Errorf(myt.ENOTFOUND, "Platform not found.")
		} else if err != nil {
			return err
		}
		if status != myt.StatusDesigned && status != myt.StatusDestroyed {
			return myt.Errorf(myt.ECONFLICT, "The platform is %s: destroy it before deleting it, so no cloud resources are left behind.", status)
		}
		// Its backups would go with it (their rows, and the keys of
		// encrypted ones): often the only copy of its data left.
		var good int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM backups WHERE platform_id = ? AND state = ?", id, myt.BackupOK).Scan(&good); err != nil {
			return err
		}
		if good > 0 {
			return myt.Errorf(myt.ECONFLICT, "The platform has %d backup(s): restore or download what you need, delete them (myt backup rm, or its Backups page), then delete the platform.", good)
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM platforms WHERE id = ?", id)
		return err
	})
}

// CheckNewPlatform reports, as one EINVALID error, what would stop d from
// becoming a new platform of the principal: its validation errors, a
// credential they do not have, a name they already use. It saves nothing.
func (s *PlatformService) CheckNewPlatform(ctx context.Context, d *myt.Design) error {
	a, err := principal(ctx)
	if err != nil {
		return err
	}
	tx, err := s.db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	err = s.checkDesign(ctx, tx, a.User.ID, d, true)
	if myt.ErrorCode(err) == myt.ECONFLICT {
		return myt.Invalid("The platform design is not valid.", []myt.FieldError{{Field: "metadata.name", Message: fmt.Sprintf("%q given; you already have a platform of that name", d.Metadata.Name)}})
	}
	return err
}
