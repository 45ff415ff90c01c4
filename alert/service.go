package alert

import (
	"context"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/myt-iot/myt"
)

// Service is the alerting of a signed-in user's platforms, for the JSON
// API and the web UI: every method first finds the platform through
// Platforms, which acts on the principal in ctx, so another user's
// platform is myt.ENOTFOUND like a missing one. Validation errors are
// myt.EINVALID with the field named (name, kind, url, secret, to,
// threshold, for, clearFor).
type Service struct {
	Store     Store
	Platforms myt.PlatformService
	// Engine sends the tests (its Client, SMTP and Timeout).
	Engine *Engine
}

// ChannelInput is a new channel: a webhook (URL, optional Secret) or an
// email channel (To).
type ChannelInput struct {
	Name   string
	Kind   ChannelKind // ChannelWebhook when empty
	URL    string
	Secret string
	To     []string
}

// ChannelPatch changes a channel; nil fields stay as they are. URL and
// Secret apply to a webhook (an empty Secret removes it), To to email.
type ChannelPatch struct {
	Name   *string
	URL    *string
	Secret *string
	To     []string
}

// RulePatch changes a rule; nil fields stay as they are.
type RulePatch struct {
	Enabled   *bool
	Threshold *float64
	For       *time.Duration
	ClearFor  *time.Duration
}

// MaxFor bounds a rule's For and ClearFor.
const MaxFor = 7 * 24 * time.Hour

// invalid is a validation error of one field.
func invalid(field, msg string) error {
	return &myt.Error{Code: myt.EINVALID, Message: field + ": " + msg, Fields: []myt.FieldError{{Field: field, Message: msg}}}
}

// asField gives a validation error without fields the field it names
// ("to: ...").
func asField(err error, field string) error {
	if myt.ErrorCode(err) != myt.EINVALID || len(myt.ErrorFields(err)) > 0 {
		return err
	}
	return invalid(field, strings.TrimPrefix(myt.ErrorMessage(err), field+": "))
}

func (s *Service) platform(ctx context.Context, platformID int64) error {
	_, err := s.Platforms.FindPlatformByID(ctx, platformID)
	return err
}

func checkName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid("name", "give the channel a name.")
	}
	if len(name) > 64 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return invalid("name", "at most 64 characters, no control characters.")
	}
	return nil
}

func checkSecret(secret string) error {
	if len(secret) > 256 {
		return invalid("secret", "at most 256 characters.")
	}
	return nil
}

// Channels lists the platform's channels.
func (s *Service) Channels(ctx context.Context, platformID int64) ([]Channel, error) {
	if err := s.platform(ctx, platformID); err != nil {
		return nil, err
	}
	return s.Store.Channels(ctx, platformID)
}

// AddChannel adds a webhook or email channel to the platform.
func (s *Service) AddChannel(ctx context.Context, platformID int64, in ChannelInput) (Channel, error) {
	if err := s.platform(ctx, platformID); err != nil {
		return Channel{}, err
	}
	in.Name = strings.TrimSpace(in.Name)
	if err := checkName(in.Name); err != nil {
		return Channel{}, err
	}
	switch in.Kind {
	case ChannelWebhook, "":
		if len(in.To) > 0 {
			return Channel{}, invalid("to", "a webhook has no recipients; set kind to email.")
		}
		if err := CheckWebhookURL(in.URL); err != nil {
			return Channel{}, err
		}
		if err := checkSecret(in.Secret); err != nil {
			return Channel{}, err
		}
		return s.Store.AddChannel(ctx, platformID, in.Name, Webhook{URL: in.URL, Secret: in.Secret})
	case ChannelEmail:
		if in.URL != "" || in.Secret != "" {
			return Channel{}, invalid("url", "an email channel has no URL or secret; set kind to webhook.")
		}
		to, err := CheckRecipients(in.To)
		if err != nil {
			return Channel{}, asField(err, "to")
		}
		return s.Store.AddEmailChannel(ctx, platformID, in.Name, to)
	}
	return Channel{}, invalid("kind", "must be webhook or email.")
}

// UpdateChannel changes the channel's name, a webhook's URL or secret,
// or an email channel's recipients.
func (s *Service) UpdateChannel(ctx context.Context, platformID, channelID int64, p ChannelPatch) (Channel, error) {
	if err := s.platform(ctx, platformID); err != nil {
		return Channel{}, err
	}
	c, err := s.Store.Channel(ctx, platformID, channelID)
	if err != nil {
		return Channel{}, err
	}
	if p.Name != nil {
		name := strings.TrimSpace(*p.Name)
		if err := checkName(name); err != nil {
			return Channel{}, err
		}
		c.Name = name
	}
	var w *Webhook
	switch c.Kind {
	case ChannelEmail:
		if p.URL != nil || p.Secret != nil {
			return Channel{}, invalid("url", "an email channel has no URL or secret.")
		}
		if p.To != nil {
			to, err := CheckRecipients(p.To)
			if err != nil {
				return Channel{}, asField(err, "to")
			}
			c.To = to
		}
	default:
		if p.To != nil {
			return Channel{}, invalid("to", "a webhook has no recipients.")
		}
		if p.URL != nil || p.Secret != nil {
			old, err := s.Store.Webhook(ctx, c)
			if err != nil {
				return Channel{}, err
			}
			if p.URL != nil {
				if err := CheckWebhookURL(*p.URL); err != nil {
					return Channel{}, err
				}
				old.URL = *p.URL
			}
			if p.Secret != nil {
				if err := checkSecret(*p.Secret); err != nil {
					return Channel{}, err
				}
				old.Secret = *p.Secret
			}
			w = &old
		}
	}
	return s.Store.UpdateChannel(ctx, c, w)
}

// DeleteChannel deletes the channel (its deliveries leave the history).
func (s *Service) DeleteChannel(ctx context.Context, platformID, channelID int64) error {
	if err := s.platform(ctx, platformID); err != nil {
		return err
	}
	return s.Store.DeleteChannel(ctx, platformID, channelID)
}

// SendTest sends one test notification to the channel; a nil error means
// the receiver (or the SMTP relay) took it.
func (s *Service) SendTest(ctx context.Context, platformID, channelID int64) (Channel, error) {
	if err := s.platform(ctx, platformID); err != nil {
		return Channel{}, err
	}
	c, err := s.Store.Channel(ctx, platformID, channelID)
	if err != nil {
		return Channel{}, err
	}
	e := s.Engine
	if e == nil {
		e = &Engine{Store: s.Store}
	}
	return c, e.SendTest(ctx, c)
}

// Rules lists the platform's rules, creating the defaults first if the
// engine has not seen the platform yet (so they can be set before the
// first deployment).
func (s *Service) Rules(ctx context.Context, platformID int64) ([]Rule, error) {
	if err := s.platform(ctx, platformID); err != nil {
		return nil, err
	}
	if err := s.Store.EnsureDefaults(ctx, platformID, Defaults()); err != nil {
		return nil, err
	}
	return s.Store.Rules(ctx, platformID)
}

// UpdateRule enables or disables a rule, or changes its threshold and
// durations.
func (s *Service) UpdateRule(ctx context.Context, platformID, ruleID int64, p RulePatch) (Rule, error) {
	rules, err := s.Rules(ctx, platformID)
	if err != nil {
		return Rule{}, err
	}
	var r *Rule
	for i := range rules {
		if rules[i].ID == ruleID {
			r = &rules[i]
		}
	}
	if r == nil {
		return Rule{}, myt.Errorf(myt.ENOTFOUND, "Alert rule %d not found.", ruleID)
	}
	var fields []myt.FieldError
	if p.Threshold != nil {
		if t := *p.Threshold; math.IsNaN(t) || math.IsInf(t, 0) || t < 0 || (r.Kind == KindDisk && t > 100) {
			msg := "must be a number, 0 or more"
			if r.Kind == KindDisk {
				msg = "must be a percentage, 0 to 100"
			}
			fields = append(fields, myt.FieldError{Field: "threshold", Message: msg})
		} else {
			r.Threshold = t
		}
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		dst   *time.Duration
	}{{"for", p.For, &r.For}, {"clearFor", p.ClearFor, &r.ClearFor}} {
		if d.v == nil {
			continue
		}
		if *d.v < 0 || *d.v > MaxFor {
			fields = append(fields, myt.FieldError{Field: d.field, Message: "must be a duration from 0s to 168h, such as 5m"})
			continue
		}
		*d.dst = *d.v
	}
	if len(fields) > 0 {
		return Rule{}, &myt.Error{Code: myt.EINVALID, Message: "The rule's settings are not valid.", Fields: fields}
	}
	if p.Enabled != nil {
		r.Enabled = *p.Enabled
	}
	if err := s.Store.UpdateRule(ctx, *r); err != nil {
		return Rule{}, err
	}
	if !r.Enabled {
		r.State, r.Since, r.ClearSince = StateOK, time.Time{}, time.Time{}
	}
	return *r, nil
}

// MaxEvents bounds a page of the history.
const MaxEvents = 200

// Events is a page of the platform's history, newest first: the events
// older than the event before (0: the newest), at most limit (1 to
// MaxEvents; 50 when 0). next, when not 0, is the before of the next
// (older) page.
func (s *Service) Events(ctx context.Context, platformID, before int64, limit int) (evs []Event, next int64, err error) {
	if err := s.platform(ctx, platformID); err != nil {
		return nil, 0, err
	}
	if limit == 0 {
		limit = 50
	}
	if limit < 0 || limit > MaxEvents {
		return nil, 0, invalid("limit", "must be 1-200")
	}
	if before < 0 {
		return nil, 0, invalid("before", "must be an event id")
	}
	// One more than asked tells whether an older page exists.
	evs, err = s.Store.Events(ctx, platformID, before, limit+1)
	if err != nil {
		return nil, 0, err
	}
	if len(evs) > limit {
		evs = evs[:limit]
		next = evs[limit-1].ID
	}
	return evs, next, nil
}
