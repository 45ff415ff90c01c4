package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
)

// AlertStore keeps alert rules, their state, channels (a webhook's URL
// and secret sealed in the platform's secrets) and the history of fired
// and resolved alerts.
// It acts on behalf of the server's alert engine, not of a signed-in
// user.
type AlertStore struct {
	db      *DB
	secrets *PlatformSecrets
}

var _ alert.Store = (*AlertStore)(nil)

// NewAlertStore returns the alert store of db.
func NewAlertStore(db *DB) *AlertStore { return &AlertStore{db: db, secrets: NewPlatformSecrets(db)} }

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOrZero(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return fromMS(ms)
}

func notFoundPlatform(err error, platformID int64) error {
	if isForeignKey(err) {
		return myt.Errorf(myt.ENOTFOUND, "Platform %d not found.", platformID)
	}
	return err
}

// EnsureDefaults implements alert.Store.
func (s *AlertStore) EnsureDefaults(ctx context.Context, platformID int64, rules []alert.Rule) error {
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO alert_platforms(platform_id) VALUES (?) ON CONFLICT DO NOTHING", platformID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		for _, r := range rules {
			if _, err := tx.ExecContext(ctx, `INSERT INTO alert_rules(platform_id, name, kind, component, threshold, for_ms, clear_ms, enabled)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, platformID, r.Name, string(r.Kind), r.Component, r.Threshold,
				r.For.Milliseconds(), r.ClearFor.Milliseconds(), r.Enabled); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create the default alert rules of platform %d: %w", platformID, notFoundPlatform(err, platformID))
	}
	return nil
}

// Rules implements alert.Store.
func (s *AlertStore) Rules(ctx context.Context, platformID int64) ([]alert.Rule, error) {
	rows, err := s.db.db.QueryContext(ctx, `SELECT id, platform_id, name, kind, component, threshold, for_ms, clear_ms, enabled,
		state, since, clear_since, value FROM alert_rules WHERE platform_id = ? ORDER BY id`, platformID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alert.Rule
	for rows.Next() {
		var r alert.Rule
		var kind, state string
		var forMS, clearMS, since, clearSince int64
		if err := rows.Scan(&r.ID, &r.PlatformID, &r.Name, &kind, &r.Component, &r.Threshold, &forMS, &clearMS, &r.Enabled,
			&state, &since, &clearSince, &r.Value); err != nil {
			return nil, err
		}
		r.Kind, r.State = alert.Kind(kind), alert.State(state)
		r.For, r.ClearFor = time.Duration(forMS)*time.Millisecond, time.Duration(clearMS)*time.Millisecond
		r.Since, r.ClearSince = timeOrZero(since), timeOrZero(clearSince)
		out = append(out, r)
	}
	return out, rows.Err()
}

// SaveState implements alert.Store.
func (s *AlertStore) SaveState(ctx context.Context, r alert.Rule, ev *alert.Event) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE alert_rules SET state = ?, since = ?, clear_since = ?, value = ? WHERE id = ?",
			string(r.State), msOrZero(r.Since), msOrZero(r.ClearSince), r.Value, r.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return myt.Errorf(myt.ENOTFOUND, "Alert rule %d not found.", r.ID)
		}
		if ev == nil {
			return nil
		}
		return tx.QueryRowContext(ctx, `INSERT INTO alert_events(platform_id, rule_id, rule, kind, state, value, threshold, since, at, detail, dispatched)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) RETURNING id`, ev.PlatformID, ev.RuleID, ev.Rule, string(ev.Kind), ev.State,
			ev.Value, ev.Threshold, msOrZero(ev.Since), ev.At.UnixMilli(), ev.Detail).Scan(&ev.ID)
	})
}

// UpdateRule implements alert.Store.
func (s *AlertStore) UpdateRule(ctx context.Context, r alert.Rule) error {
	q := "UPDATE alert_rules SET enabled = ?, threshold = ?, for_ms = ?, clear_ms = ? WHERE id = ? AND platform_id = ?"
	if !r.Enabled {
		q = "UPDATE alert_rules SET enabled = ?, threshold = ?, for_ms = ?, clear_ms = ?, state = 'ok', since = 0, clear_since = 0 WHERE id = ? AND platform_id = ?"
	}
	res, err := s.db.db.ExecContext(ctx, q, r.Enabled, r.Threshold, r.For.Milliseconds(), r.ClearFor.Milliseconds(), r.ID, r.PlatformID)
	if err != nil {
		return fmt.Errorf("update alert rule %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return myt.Errorf(myt.ENOTFOUND, "Alert rule %d not found.", r.ID)
	}
	return nil
}

// Webhook implements alert.Store.
func (s *AlertStore) Webhook(ctx context.Context, c alert.Channel) (alert.Webhook, error) {
	var w alert.Webhook
	blob, err := s.secrets.Get(ctx, c.PlatformID, webhookSecretName(c.ID))
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal(blob, &w); err != nil {
		return w, errors.New("the channel's sealed webhook is not valid")
	}
	return w, nil
}

// RecordDelivery implements alert.Store.
func (s *AlertStore) RecordDelivery(ctx context.Context, eventID int64, d alert.Delivery) error {
	_, err := s.db.db.ExecContext(ctx, `INSERT INTO alert_deliveries(event_id, channel_id, status, attempts, error, at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(event_id, channel_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, error = excluded.error, at = excluded.at`,
		eventID, d.ChannelID, d.Status, d.Attempts, d.Error, d.At.UnixMilli())
	return err
}

// Events implements alert.Store.
func (s *AlertStore) Events(ctx context.Context, platformID, before int64, limit int) ([]alert.Event, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	return s.events(ctx, "platform_id = ? AND id < ? ORDER BY id DESC LIMIT ?", platformID, before, limit)
}

// Undispatched implements alert.Store.
func (s *AlertStore) Undispatched(ctx context.Context) ([]alert.Event, error) {
	return s.events(ctx, "dispatched = 0 ORDER BY id")
}

// MarkDispatched implements alert.Store.
func (s *AlertStore) MarkDispatched(ctx context.Context, eventID int64) error {
	_, err := s.db.db.ExecContext(ctx, "UPDATE alert_events SET dispatched = 1 WHERE id = ?", eventID)
	return err
}

// events lists the events matching where, with their deliveries.
func (s *AlertStore) events(ctx context.Context, where string, args ...any) ([]alert.Event, error) {
	rows, err := s.db.db.QueryContext(ctx, `SELECT id, platform_id, coalesce(rule_id, 0), rule, kind, state, value, threshold, since, at, detail
		FROM alert_events WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	var out []alert.Event
	for rows.Next() {
		var e alert.Event
		var kind string
		var since, at int64
		if err := rows.Scan(&e.ID, &e.PlatformID, &e.RuleID, &e.Rule, &kind, &e.State, &e.Value, &e.Threshold, &since, &at, &e.Detail); err != nil {
			rows.Close()
			return nil, err
		}
		e.Kind, e.Since, e.At = alert.Kind(kind), timeOrZero(since), fromMS(at)
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		ds, err := s.db.db.QueryContext(ctx, "SELECT channel_id, status, attempts, error, at FROM alert_deliveries WHERE event_id = ? ORDER BY channel_id", out[i].ID)
		if err != nil {
			return nil, err
		}
		for ds.Next() {
			var d alert.Delivery
			var at int64
			if err := ds.Scan(&d.ChannelID, &d.Status, &d.Attempts, &d.Error, &at); err != nil {
				ds.Close()
				return nil, err
			}
			d.At = fromMS(at)
			out[i].Deliveries = append(out[i].Deliveries, d)
		}
		ds.Close()
		if err := ds.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PlatformName implements alert.Store.
func (s *AlertStore) PlatformName(ctx context.Context, platformID int64) (string, error) {
	var name string
	err := s.db.db.QueryRowContext(ctx, "SELECT name FROM platforms WHERE id = ?", platformID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", myt.Errorf(myt.ENOTFOUND, "Platform %d not found.", platformID)
	}
	return name, err
}

// CertificateExpires implements alert.Store: the end recorded in the
// platform's endpoints by its last deployment.
func (s *AlertStore) CertificateExpires(ctx context.Context, platformID int64) (time.Time, error) {
	var ep sql.NullString
	err := s.db.db.QueryRowContext(ctx, "SELECT endpoints FROM platforms WHERE id = ?", platformID).Scan(&ep)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, myt.Errorf(myt.ENOTFOUND, "Platform %d not found.", platformID)
	} else if err != nil || !ep.Valid {
		return time.Time{}, err
	}
	var e myt.Endpoints
	if err := json.Unmarshal([]byte(ep.String), &e); err != nil {
		return time.Time{}, fmt.Errorf("platform %d endpoints: %w", platformID, err)
	}
	return e.CertificateExpires, nil
}
