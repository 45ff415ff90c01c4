package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/vault"
)

// StateStore keeps each platform's OpenTofu/Terraform state, sealed with
// the server key and bound to the platform, with the tool's lock. It
// serves the http state backend (package deploy).
type StateStore struct{ db *DB }

// NewStateStore returns the state store of db.
func NewStateStore(db *DB) *StateStore { return &StateStore{db: db} }

func stateAAD(platformID int64) []byte {
	return fmt.Appendf(nil, "myt/platform/%d/tfstate", platformID)
}

// Get returns the platform's state, or nil when it has none.
func (s *StateStore) Get(ctx context.Context, platformID int64) ([]byte, error) {
	var sealed []byte
	err := s.db.db.QueryRowContext(ctx, "SELECT sealed FROM tf_states WHERE platform_id = ?", platformID).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) || err == nil && sealed == nil {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	st, err := vault.Open(s.db.serverKey, sealed, stateAAD(platformID))
	if err != nil {
		return nil, fmt.Errorf("open platform %d state: %w", platformID, err)
	}
	return st, nil
}

// Put replaces the platform's state. When the state is locked, lockID must
// be the holder's (a *myt.StateLockedError otherwise); an empty lockID is accepted
// only while the state is unlocked.
func (s *StateStore) Put(ctx context.Context, platformID int64, lockID string, state []byte) error {
	sealed, err := vault.Seal(s.db.serverKey, state, stateAAD(platformID))
	if err != nil {
		return err
	}
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		if err := checkLock(ctx, tx, platformID, lockID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tf_states(platform_id, sealed, updated) VALUES (?, ?, ?)
			ON CONFLICT(platform_id) DO UPDATE SET sealed = excluded.sealed, updated = excluded.updated`, platformID, sealed, s.db.nowMS())
		return err
	})
}

// Delete removes the platform's state (the lock rule is Put's).
func (s *StateStore) Delete(ctx context.Context, platformID int64, lockID string) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		if err := checkLock(ctx, tx, platformID, lockID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE tf_states SET sealed = NULL, updated = ? WHERE platform_id = ?", s.db.nowMS(), platformID)
		return err
	})
}

func checkLock(ctx context.Context, tx *sql.Tx, platformID int64, lockID string) error {
	var held, info sql.NullString
	err := tx.QueryRowContext(ctx, "SELECT lock_id, lock_info FROM tf_states WHERE platform_id = ?", platformID).Scan(&held, &info)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	if held.Valid && held.String != lockID {
		return &myt.StateLockedError{Info: info.String}
	}
	return nil
}

// Lock takes the state's lock for lockID with the tool's info. A
// *myt.StateLockedError carries the holder's info when another id holds it; taking
// a lock already held by the same id succeeds.
func (s *StateStore) Lock(ctx context.Context, platformID int64, lockID, info string) error {
	if lockID == "" {
		return myt.Errorf(myt.EINVALID, "A lock needs an ID.")
	}
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		var held, heldInfo sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT lock_id, lock_info FROM tf_states WHERE platform_id = ?", platformID).Scan(&held, &heldInfo)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, "INSERT INTO tf_states(platform_id, lock_id, lock_info, updated) VALUES (?, ?, ?, ?)", platformID, lockID, info, s.db.nowMS())
			return err
		case err != nil:
			return err
		case held.Valid && held.String != lockID:
			return &myt.StateLockedError{Info: heldInfo.String}
		}
		_, err = tx.ExecContext(ctx, "UPDATE tf_states SET lock_id = ?, lock_info = ? WHERE platform_id = ?", lockID, info, platformID)
		return err
	})
}

// Unlock releases the lock held by lockID; an empty lockID releases any
// lock (force-unlock). A *myt.StateLockedError when another id holds it.
func (s *StateStore) Unlock(ctx context.Context, platformID int64, lockID string) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		if lockID != "" {
			if err := checkLock(ctx, tx, platformID, lockID); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE tf_states SET lock_id = NULL, lock_info = NULL WHERE platform_id = ?", platformID)
		return err
	})
}

// Locked reports the holder's lock info, or "" when unlocked.
func (s *StateStore) Locked(ctx context.Context, platformID int64) (string, error) {
	var info sql.NullString
	err := s.db.db.QueryRowContext(ctx, "SELECT lock_info FROM tf_states WHERE platform_id = ? AND lock_id IS NOT NULL", platformID).Scan(&info)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return info.String, err
}
