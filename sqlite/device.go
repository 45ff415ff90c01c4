package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/myt-iot/myt"
)

// DeviceStore keeps platforms' devices (myt.Device). Like JobStore it
// acts for the server: callers check that the platform is the
// principal's first (device.Service does).
type DeviceStore struct{ db *DB }

// NewDeviceStore returns the device store of db.
func NewDeviceStore(db *DB) *DeviceStore { return &DeviceStore{db: db} }

const deviceColumns = "id, platform_id, name, description, password_hash, created, revoked, last_seen, connected, messages"

func scanDevice(sc interface{ Scan(...any) error }) (*myt.Device, error) {
	d := &myt.Device{}
	var created int64
	var revoked, seen sql.NullInt64
	if err := sc.Scan(&d.ID, &d.PlatformID, &d.Name, &d.Description, &d.PasswordHash, &created, &revoked, &seen, &d.Connected, &d.Messages); err != nil {
		return nil, err
	}
	d.Created, d.Revoked, d.LastSeen = fromMS(created), fromNullMS(revoked), fromNullMS(seen)
	return d, nil
}

// Devices lists the platform's devices: active ones by name, then
// revoked ones, newest revocation first.
func (s *DeviceStore) Devices(ctx context.Context, platformID int64) ([]*myt.Device, error) {
	rows, err := s.db.db.QueryContext(ctx, "SELECT "+deviceColumns+" FROM devices WHERE platform_id = ? ORDER BY revoked IS NOT NULL, revoked DESC, name, id", platformID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*myt.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// AddDevices stores every device of ds (Name, Description and
// PasswordHash set) on the platform in one transaction, or none:
// ECONFLICT naming the first name an active device already has. It sets
// each one's ID, PlatformID and Created.
func (s *DeviceStore) AddDevices(ctx context.Context, platformID int64, ds []*myt.Device) error {
	now := s.db.nowMS()
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range ds {
			res, err := tx.ExecContext(ctx, "INSERT INTO devices(platform_id, name, description, password_hash, created) VALUES (?, ?, ?, ?, ?)",
				platformID, d.Name, d.Description, d.PasswordHash, now)
			if isUnique(err) {
				return myt.Errorf(myt.ECONFLICT, "The platform already has a device named %s.", d.Name)
			}
			if err != nil {
				return err
			}
			if d.ID, err = res.LastInsertId(); err != nil {
				return err
			}
			d.PlatformID, d.Created = platformID, fromMS(now)
		}
		return nil
	})
}

// RevokeDevice marks the platform's active device name revoked and
// returns it; ENOTFOUND when there is none.
func (s *DeviceStore) RevokeDevice(ctx context.Context, platformID int64, name string) (*myt.Device, error) {
	d, err := scanDevice(s.db.db.QueryRowContext(ctx, "UPDATE devices SET revoked = ?, connected = 0 WHERE platform_id = ? AND name = ? AND revoked IS NULL RETURNING "+deviceColumns,
		s.db.nowMS(), platformID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, myt.Errorf(myt.ENOTFOUND, "The platform has no device named %s.", name)
	}
	return d, err
}

// SetActivity records what the broker said of an active device at time
// at: connected (then last_seen becomes at) and its message count.
func (s *DeviceStore) SetActivity(ctx context.Context, id int64, connected bool, messages int64, at time.Time) error {
	var err error
	if connected {
		_, err = s.db.db.ExecContext(ctx, "UPDATE devices SET connected = 1, last_seen = ?, messages = ? WHERE id = ? AND revoked IS NULL", at.UnixMilli(), messages, id)
	} else {
		_, err = s.db.db.ExecContext(ctx, "UPDATE devices SET connected = 0 WHERE id = ? AND revoked IS NULL", id)
	}
	return err
}

// DeleteDevice removes a device row, for an add the broker refused.
func (s *DeviceStore) DeleteDevice(ctx context.Context, id int64) error {
	_, err := s.db.db.ExecContext(ctx, "DELETE FROM devices WHERE id = ?", id)
	return err
}
