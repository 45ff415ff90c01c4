package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/myt-iot/myt/alert"
)

// The Go client of the alert routes (httpapi/alerts.go), for the CLI and
// the end-to-end tests.

// AlertChannels lists the platform's alert channels.
func (c *Client) AlertChannels(ctx context.Context, platformID int64) ([]alert.Channel, error) {
	var out []alert.Channel
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/alerts/channels", platformID), nil, "", &out)
	return out, err
}

// CreateAlertChannel adds a webhook or email channel to the platform.
func (c *Client) CreateAlertChannel(ctx context.Context, platformID int64, req AlertChannelRequest) (*alert.Channel, error) {
	var ch alert.Channel
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/alerts/channels", platformID), req, "", &ch)
	return &ch, err
}

// DeleteAlertChannel deletes one of the platform's channels.
func (c *Client) DeleteAlertChannel(ctx context.Context, platformID, channelID int64) error {
	return c.do(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/platforms/%d/alerts/channels/%d", platformID, channelID), nil, "", nil)
}

// TestAlertChannel sends a test notification to the channel; a receiver
// that refused it is not an error: the answer says so.
func (c *Client) TestAlertChannel(ctx context.Context, platformID, channelID int64) (*AlertTestResponse, error) {
	var res AlertTestResponse
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/alerts/channels/%d/test", platformID, channelID), nil, "", &res)
	return &res, err
}

// AlertRules lists the platform's alert rules.
func (c *Client) AlertRules(ctx context.Context, platformID int64) ([]AlertRule, error) {
	var out []AlertRule
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/alerts/rules", platformID), nil, "", &out)
	return out, err
}

// UpdateAlertRule changes one of the platform's rules.
func (c *Client) UpdateAlertRule(ctx context.Context, platformID, ruleID int64, req AlertRulePatch) (*AlertRule, error) {
	var r AlertRule
	err := c.do(ctx, http.MethodPatch, fmt.Sprintf("/api/v1/platforms/%d/alerts/rules/%d", platformID, ruleID), req, "", &r)
	return &r, err
}

// AlertEvents returns a page of the platform's alert history, newest
// first: the events older than before (0: the newest), at most limit
// (0: the server's 50).
func (c *Client) AlertEvents(ctx context.Context, platformID, before int64, limit int) (*AlertEvents, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := fmt.Sprintf("/api/v1/platforms/%d/alerts/events", platformID)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out AlertEvents
	err := c.do(ctx, http.MethodGet, path, nil, "", &out)
	return &out, err
}
