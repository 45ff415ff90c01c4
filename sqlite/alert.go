package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/vault"
)

// AlertStore keeps alert rules, their state, webhook channels (sealed in
// the platform's secrets) and the history of fired and resolved alerts.
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
		return tx.QueryRowContext(ctx, `INSERT INTO alert_events(platform_id, rule_id, rule, kind, state, value, threshold, since, at, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, ev.PlatformID, ev.RuleID, ev.Rule, string(ev.Kind), ev.State,
			ev.Value, ev.Threshold, msOrZero(ev.Since), ev.At.UnixMilli(), ev.Detail).Scan(&ev.ID)
	})
}

func webhookSecretName(channelID int64) string {
	return "alert/webhook/" + strconv.FormatInt(channelID, 10)
}

// AddChannel implements alert.Store. The URL must be http or https; the
// URL and the secret are sealed in the platform's secrets.
func (s *AlertStore) AddChannel(ctx context.Context, platformID int64, name string, w alert.Webhook) (alert.Channel, error) {
	if err := alert.CheckWebhookURL(w.URL); err != nil {
		return alert.Channel{}, err
	}
	if name == "" {
		return alert.Channel{}, myt.Errorf(myt.EINVALID, "name: give the channel a name.")
	}
	c := alert.Channel{PlatformID: platformID, Name: name, Signed: w.Secret != ""}
	blob, err := json.Marshal(w)
	if err != nil {
		return c, err
	}
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "INSERT INTO alert_channels(platform_id, name, signed, created) VALUES (?, ?, ?, ?) RETURNING id",
			platformID, name, c.Signed, s.db.nowMS()).Scan(&c.ID); err != nil {
			return err
		}
		// Sealed as PlatformSecrets.Put seals, in this transaction.
		name := webhookSecretName(c.ID)
		sealed, err := vault.Seal(s.db.serverKey, blob, platformSecretAAD(platformID, name))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO platform_secrets(platform_id, name, sealed) VALUES (?, ?, ?)", platformID, name, sealed)
		return err
	})
	if err != nil {
		return alert.Channel{}, fmt.Errorf("add alert channel: %w", notFoundPlatform(err, platformID))
	}
	return c, nil
}

// Channels implements alert.Store.
func (s *AlertStore) Channels(ctx context.Context, platformID int64) ([]alert.Channel, error) {
	rows, err := s.db.db.QueryContext(ctx, "SELECT id, platform_id, name, signed FROM alert_channels WHERE platform_id = ? ORDER BY id", platformID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alert.Channel
	for rows.Next() {
		var c alert.Channel
		if err := rows.Scan(&c.ID, &c.PlatformID, &c.Name, &c.Signed); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
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
func (s *AlertStore) Events(ctx context.Context, platformID int64, limit int) ([]alert.Event, error) {
	rows, err := s.db.db.QueryContext(ctx, `SELECT id, platform_id, coalesce(rule_id, 0), rule, kind, state, value, threshold, since, at, detail
		FROM alert_events WHERE platform_id = ? ORDER BY id DESC LIMIT ?`, platformID, limit)
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
