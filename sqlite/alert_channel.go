package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/vault"
)

func webhookSecretName(channelID int64) string {
	return "alert/webhook/" + strconv.FormatInt(channelID, 10)
}

// sealWebhook writes the channel's URL and secret to the platform's
// secrets in tx, sealed as PlatformSecrets.Put seals.
func (s *AlertStore) sealWebhook(ctx context.Context, tx *sql.Tx, c alert.Channel, w alert.Webhook) error {
	blob, err := json.Marshal(w)
	if err != nil {
		return err
	}
	name := webhookSecretName(c.ID)
	sealed, err := vault.Seal(s.db.serverKey, blob, platformSecretAAD(c.PlatformID, name))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO platform_secrets(platform_id, name, sealed) VALUES (?, ?, ?)
		ON CONFLICT(platform_id, name) DO UPDATE SET sealed = excluded.sealed`, c.PlatformID, name, sealed)
	return err
}

// webhookHost is what is shown of a webhook's URL: its host.
func webhookHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// AddChannel implements alert.Store. The URL must be http or https; the
// URL and the secret are sealed in the platform's secrets, and only the
// URL's host is kept in clear.
func (s *AlertStore) AddChannel(ctx context.Context, platformID int64, name string, w alert.Webhook) (alert.Channel, error) {
	if err := alert.CheckWebhookURL(w.URL); err != nil {
		return alert.Channel{}, err
	}
	if name == "" {
		return alert.Channel{}, &myt.Error{Code: myt.EINVALID, Message: "name: give the channel a name.", Fields: []myt.FieldError{{Field: "name", Message: "give the channel a name."}}}
	}
	c := alert.Channel{PlatformID: platformID, Name: name, Kind: alert.ChannelWebhook, Signed: w.Secret != "", Host: webhookHost(w.URL)}
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		now := s.db.nowMS()
		if err := tx.QueryRowContext(ctx, "INSERT INTO alert_channels(platform_id, name, kind, target, signed, created) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
			platformID, name, string(c.Kind), c.Host, c.Signed, now).Scan(&c.ID); err != nil {
			return err
		}
		c.Created = fromMS(now)
		return s.sealWebhook(ctx, tx, c, w)
	})
	if err != nil {
		return alert.Channel{}, fmt.Errorf("add alert channel: %w", notFoundPlatform(err, platformID))
	}
	return c, nil
}

// AddEmailChannel implements alert.Store.
func (s *AlertStore) AddEmailChannel(ctx context.Context, platformID int64, name string, to []string) (alert.Channel, error) {
	to, err := alert.CheckRecipients(to)
	if err != nil {
		return alert.Channel{}, err
	}
	if name == "" {
		return alert.Channel{}, &myt.Error{Code: myt.EINVALID, Message: "name: give the channel a name.", Fields: []myt.FieldError{{Field: "name", Message: "give the channel a name."}}}
	}
	c := alert.Channel{PlatformID: platformID, Name: name, Kind: alert.ChannelEmail, To: to}
	now := s.db.nowMS()
	err = s.db.db.QueryRowContext(ctx, "INSERT INTO alert_channels(platform_id, name, kind, target, signed, created) VALUES (?, ?, ?, ?, 0, ?) RETURNING id",
		platformID, name, string(c.Kind), strings.Join(to, "\n"), now).Scan(&c.ID)
	if err != nil {
		return alert.Channel{}, fmt.Errorf("add alert channel: %w", notFoundPlatform(err, platformID))
	}
	c.Created = fromMS(now)
	return c, nil
}

const channelColumns = "id, platform_id, name, kind, target, signed, created"

func scanChannel(sc interface{ Scan(...any) error }) (alert.Channel, error) {
	var c alert.Channel
	var kind, target string
	var created int64
	if err := sc.Scan(&c.ID, &c.PlatformID, &c.Name, &kind, &target, &c.Signed, &created); err != nil {
		return c, err
	}
	c.Kind, c.Created = alert.ChannelKind(kind), fromMS(created)
	switch c.Kind {
	case alert.ChannelEmail:
		if target != "" {
			c.To = strings.Split(target, "\n")
		}
	default:
		c.Host = target
	}
	return c, nil
}

// Channels implements alert.Store.
func (s *AlertStore) Channels(ctx context.Context, platformID int64) ([]alert.Channel, error) {
	rows, err := s.db.db.QueryContext(ctx, "SELECT "+channelColumns+" FROM alert_channels WHERE platform_id = ? ORDER BY id", platformID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alert.Channel
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Channel implements alert.Store.
func (s *AlertStore) Channel(ctx context.Context, platformID, channelID int64) (alert.Channel, error) {
	c, err := scanChannel(s.db.db.QueryRowContext(ctx, "SELECT "+channelColumns+" FROM alert_channels WHERE id = ? AND platform_id = ?", channelID, platformID))
	if errors.Is(err, sql.ErrNoRows) {
		return c, myt.Errorf(myt.ENOTFOUND, "Alert channel %d not found.", channelID)
	}
	return c, err
}

// UpdateChannel implements alert.Store.
func (s *AlertStore) UpdateChannel(ctx context.Context, c alert.Channel, w *alert.Webhook) (alert.Channel, error) {
	old, err := s.Channel(ctx, c.PlatformID, c.ID)
	if err != nil {
		return c, err
	}
	c.Kind, c.Created, c.Signed, c.Host = old.Kind, old.Created, old.Signed, old.Host
	target := c.Host
	if c.Kind == alert.ChannelEmail {
		to, err := alert.CheckRecipients(c.To)
		if err != nil {
			return c, err
		}
		c.To, target = to, strings.Join(to, "\n")
	} else {
		c.To = nil
	}
	if w != nil {
		if c.Kind != alert.ChannelWebhook {
			return c, myt.Errorf(myt.EINVALID, "url: only a webhook channel has a URL.")
		}
		if err := alert.CheckWebhookURL(w.URL); err != nil {
			return c, err
		}
		c.Signed, c.Host = w.Secret != "", webhookHost(w.URL)
		target = c.Host
	}
	err = s.db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE alert_channels SET name = ?, target = ?, signed = ? WHERE id = ? AND platform_id = ?",
			c.Name, target, c.Signed, c.ID, c.PlatformID); err != nil {
			return err
		}
		if w != nil {
			return s.sealWebhook(ctx, tx, c, *w)
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("update alert channel %d: %w", c.ID, err)
	}
	return c, nil
}

// DeleteChannel implements alert.Store.
func (s *AlertStore) DeleteChannel(ctx context.Context, platformID, channelID int64) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM alert_channels WHERE id = ? AND platform_id = ?", channelID, platformID)
		if err != nil {
			return fmt.Errorf("delete alert channel %d: %w", channelID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return myt.Errorf(myt.ENOTFOUND, "Alert channel %d not found.", channelID)
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM platform_secrets WHERE platform_id = ? AND name = ?", platformID, webhookSecretName(channelID))
		return err
	})
}
