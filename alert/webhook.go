package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// keyed with the channel's secret.
const SignatureHeader = "X-MyT-Signature"

// Payload is the JSON body of a notification.
type Payload struct {
	Platform   string    `json:"platform"`
	PlatformID int64     `json:"platformId"`
	Rule       string    `json:"rule"`
	Kind       Kind      `json:"kind"`
	State      string    `json:"state"` // firing, resolved (test for SendTest)
	Value      float64   `json:"value"`
	Threshold  float64   `json:"threshold"`
	Since      time.Time `json:"since"`
	At         time.Time `json:"at"`
	Detail     string    `json:"detail,omitempty"`
}

// Sign returns the signature header's value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (e *Engine) client() *http.Client {
	if e.Client != nil {
		return e.Client
	}
	return &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
}

func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	if e.Sleep != nil {
		return e.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// deliver sends ev to each of its platform's channels that has no
// delivery of it yet, records each outcome, then marks ev dispatched.
func (e *Engine) deliver(ctx context.Context, ev *Event) {
	chans, err := e.Store.Channels(ctx, ev.PlatformID)
	if err != nil {
		e.log().Error("list alert channels", "platform", ev.PlatformID, "err", err)
		return
	}
	name, err := e.Store.PlatformName(ctx, ev.PlatformID)
	if err != nil && len(chans) > 0 {
		e.log().Error("alert platform name", "platform", ev.PlatformID, "err", err)
	}
	p := Payload{Platform: name, PlatformID: ev.PlatformID, Rule: ev.Rule, Kind: ev.Kind, State: ev.State,
		Value: ev.Value, Threshold: ev.Threshold, Since: ev.Since.UTC(), At: ev.At.UTC(), Detail: ev.Detail}
	for _, c := range chans {
		if slices.ContainsFunc(ev.Deliveries, func(d Delivery) bool { return d.ChannelID == c.ID }) {
			continue // sent before a restart
		}
		attempts, err := e.send(ctx, c, p, e.attempts())
		if attempts == 0 && ctx.Err() != nil {
			return // shutting down before a try: left undispatched, sent at the next start
		}
		d := Delivery{ChannelID: c.ID, Status: Delivered, Attempts: attempts, At: e.now()}
		if err != nil {
			d.Status, d.Error = Failed, err.Error()
			e.log().Warn("alert delivery failed", "platform", ev.PlatformID, "channel", c.ID, "attempts", attempts, "err", err)
		}
		if err := e.Store.RecordDelivery(context.WithoutCancel(ctx), ev.ID, d); err != nil {
			e.log().Error("record alert delivery", "platform", ev.PlatformID, "err", err)
		}
	}
	if err := e.Store.MarkDispatched(context.WithoutCancel(ctx), ev.ID); err != nil {
		e.log().Error("mark alert event dispatched", "platform", ev.PlatformID, "event", ev.ID, "err", err)
	}
}

// Redeliver sends the events a crash left undispatched (recorded, but
// not sent to every channel), once each, to the channels that have no
// delivery of them; Run calls it first.
func (e *Engine) Redeliver(ctx context.Context) error {
	evs, err := e.Store.Undispatched(ctx)
	if err != nil {
		return fmt.Errorf("list undelivered alert events: %w", err)
	}
	for i := range evs {
		if ctx.Err() != nil {
			return nil
		}
		e.log().Info("sending an alert event left undelivered", "platform", evs[i].PlatformID, "event", evs[i].ID, "rule", evs[i].Rule, "state", evs[i].State)
		e.deliver(ctx, &evs[i])
	}
	return nil
}

func (e *Engine) attempts() int {
	if e.Attempts > 0 {
		return e.Attempts
	}
	return 3
}

// SendTest sends a test notification (state "test") to the channel, once,
// and says whether the receiver took it: the "send test" button.
func (e *Engine) SendTest(ctx context.Context, c Channel) error {
	name, _ := e.Store.PlatformName(ctx, c.PlatformID)
	now := e.now().UTC()
	_, err := e.send(ctx, c, Payload{Platform: name, PlatformID: c.PlatformID, Rule: "test", State: "test", Since: now, At: now,
		Detail: "a test notification from MyT"}, 1)
	return err
}

// send sends p to the channel, trying up to attempts times with a
// doubling backoff; it returns the tries made and the last error.
func (e *Engine) send(ctx context.Context, c Channel, p Payload, attempts int) (int, error) {
	var try func(ctx context.Context, timeout time.Duration) error
	switch c.Kind {
	case ChannelEmail:
		msg := e.message(c.To, p)
		try = func(ctx context.Context, timeout time.Duration) error { return e.mail(ctx, c.To, msg, timeout) }
	default:
		w, err := e.Store.Webhook(ctx, c)
		if err != nil {
			return 0, fmt.Errorf("open the channel's webhook: %w", err)
		}
		body, err := json.Marshal(p)
		if err != nil {
			return 0, err
		}
		try = func(ctx context.Context, timeout time.Duration) error { return e.post(ctx, w, body, timeout) }
	}
	backoff := e.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var last error
	for i := 1; i <= attempts; i++ {
		if i > 1 {
			if err := e.sleep(ctx, backoff); err != nil {
				return i - 1, last
			}
			backoff *= 2
		}
		if ctx.Err() != nil {
			return i - 1, cmpErr(last, ctx.Err())
		}
		if last = try(ctx, timeout); last == nil {
			return i, nil
		}
	}
	return attempts, last
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (e *Engine) post(ctx context.Context, w Webhook, body []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("the webhook URL is not valid") // the URL may hold a token: not in the error
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "myt-alert")
	if w.Secret != "" {
		req.Header.Set(SignatureHeader, Sign([]byte(w.Secret), body))
	}
	resp, err := e.client().Do(req)
	if err != nil {
		// *url.Error names the URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// CheckWebhookURL says whether u can be a webhook: an absolute http or
// https URL with a host. The error names the field, never the URL (it
// may hold a token).
func CheckWebhookURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return invalid("url", "give the webhook's http:// or https:// address.")
	}
	return nil
}
