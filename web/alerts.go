package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
)

// The alerts page of a platform (/platforms/{id}/alerts): its channels
// (add a webhook or an email channel, send a test, delete), its rules
// (enable, thresholds, durations) and the history of fired and resolved
// alerts with each channel's delivery. It goes through alert.Service,
// which finds the platform as the signed-in user's first (404 otherwise).

// alertsPageEvents is how many events a page of the history shows.
const alertsPageEvents = 25

type alertsView struct {
	P        *myt.Platform
	Channels []alert.Channel
	Rules    []*ruleRow
	Events   []alert.Event
	// Before is the page's cursor (0: the newest events); Next the
	// cursor of the older page (0: none).
	Before, Next int64
	// Names are the channels' names by ID, for the deliveries.
	Names map[int64]string
	// Test is the outcome of a "Send test".
	Test *testOutcome
	// Webhook and Email refill the add forms after an error; their
	// errors are WebhookErrs and EmailErrs.
	Webhook, Email         channelForm
	WebhookErrs, EmailErrs *formErrors
	NoSMTP                 bool
	CSRF                   string
	FiringCount, RuleCount int
}

type channelForm struct{ Name, URL, To string }

type testOutcome struct {
	Channel string
	Err     string
}

// ruleRow is a rule and its form's values (as typed, after an error).
type ruleRow struct {
	alert.Rule
	Threshold, For, ClearFor string
	Errs                     *formErrors
}

// Title is how the page names a rule's kind.
func (r *ruleRow) Title() string {
	switch r.Kind {
	case alert.KindDown:
		if r.Component != "" {
			return componentName(r.Component, 1) + " down"
		}
		return "A component is down"
	case alert.KindQueueDepth:
		return "Ingest queue backlog"
	case alert.KindDeadLetters:
		return "Messages dead-lettered"
	case alert.KindDisk:
		return "Data disk use"
	case alert.KindCertificate:
		return "Server certificate expiry"
	}
	return r.Name
}

// Unit says what the threshold counts.
func (r *ruleRow) Unit() string {
	switch r.Kind {
	case alert.KindDown:
		return "components down"
	case alert.KindQueueDepth:
		return "messages ready"
	case alert.KindDeadLetters:
		return "per minute"
	case alert.KindDisk:
		return "% used"
	case alert.KindCertificate:
		return "days left"
	}
	return ""
}

// Help says when the rule fires.
func (r *ruleRow) Help() string {
	if r.Kind == alert.KindCertificate {
		return "Fires when fewer days than this are left, checked at every poll."
	}
	return "Fires when the value stays above the threshold for the first duration; resolves when it stays at or under it for the second."
}

// shortDuration writes 2m0s as 2m and 1h0m0s as 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (s *server) alertService() (*alert.Service, error) {
	if s.cfg.Alerts == nil {
		return nil, myt.Errorf(myt.ENOTFOUND, "Alerting is not enabled on this server.")
	}
	return s.cfg.Alerts, nil
}

// alertsView loads the page of platform p: channels, rules and the
// history page at ?before=.
func (s *server) alertsView(w http.ResponseWriter, r *http.Request, p *myt.Platform) (*alertsView, error) {
	svc, err := s.alertService()
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	v := &alertsView{P: p, Names: map[int64]string{}, WebhookErrs: &formErrors{}, EmailErrs: &formErrors{}, CSRF: s.csrfToken(w, r),
		NoSMTP: svc.Engine == nil || svc.Engine.SMTP == nil}
	if v.Channels, err = svc.Channels(ctx, p.ID); err != nil {
		return nil, err
	}
	for _, c := range v.Channels {
		v.Names[c.ID] = c.Name
	}
	rules, err := svc.Rules(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	for _, rl := range rules {
		v.Rules = append(v.Rules, &ruleRow{Rule: rl, Threshold: strconv.FormatFloat(rl.Threshold, 'f', -1, 64),
			For: shortDuration(rl.For), ClearFor: shortDuration(rl.ClearFor), Errs: &formErrors{}})
		if rl.Enabled && rl.State == alert.StateFiring {
			v.FiringCount++
		}
	}
	v.RuleCount = len(rules)
	if b := r.URL.Query().Get("before"); b != "" && r.Method == http.MethodGet {
		if v.Before, err = strconv.ParseInt(b, 10, 64); err != nil || v.Before < 1 {
			return nil, myt.Errorf(myt.EINVALID, "The history page %q is not valid: follow the page's links.", b)
		}
	}
	if v.Events, v.Next, err = svc.Events(ctx, p.ID, v.Before, alertsPageEvents); err != nil {
		return nil, err
	}
	return v, nil
}

var alertNotices = map[string]string{
	"channel-added":   "The channel was added. Send it a test to check that it works.",
	"channel-deleted": "The channel was deleted.",
	"rule-saved":      "The rule was saved.",
}

func (s *server) renderAlerts(w http.ResponseWriter, r *http.Request, status int, v *alertsView, errs *formErrors) {
	pg := &page{Title: "Alerts · " + v.P.Name, Section: "platforms", Data: v, Errs: errs}
	if r.Method == http.MethodGet {
		pg.Notice = alertNotices[r.URL.Query().Get("ok")]
	}
	s.render(w, r, status, "alerts", pg)
}

func (s *server) alertsPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	v, err := s.alertsView(w, r, p)
	if err != nil {
		return err
	}
	s.renderAlerts(w, r, http.StatusOK, v, nil)
	return nil
}

func alertsURL(p *myt.Platform, ok, anchor string) string {
	return "/platforms/" + strconv.FormatInt(p.ID, 10) + "/alerts?ok=" + ok + anchor
}

// recipients splits the addresses typed one per line (or by commas).
func recipients(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ';' })
}

func (s *server) alertChannelAdd(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	kind := alert.ChannelKind(r.PostForm.Get("kind"))
	in := alert.ChannelInput{Kind: kind}
	switch kind {
	case alert.ChannelEmail:
		in.Name, in.To = r.PostForm.Get("email_name"), recipients(r.PostForm.Get("to"))
	case alert.ChannelWebhook:
		in.Name, in.URL, in.Secret = r.PostForm.Get("name"), strings.TrimSpace(r.PostForm.Get("url")), r.PostForm.Get("secret")
	default:
		return myt.Errorf(myt.EINVALID, "Choose a webhook or an email channel.")
	}
	c, err := svc.AddChannel(r.Context(), p.ID, in)
	if err == nil {
		s.log.Info("alert channel added", "user", myt.UserFromContext(r.Context()).Username, "platform", p.ID, "channel", c.ID, "kind", c.Kind)
		http.Redirect(w, r, alertsURL(p, "channel-added", "#channels"), http.StatusSeeOther)
		return nil
	}
	if myt.ErrorCode(err) != myt.EINVALID {
		return err
	}
	v, verr := s.alertsView(w, r, p)
	if verr != nil {
		return verr
	}
	if kind == alert.ChannelEmail {
		v.Email = channelForm{Name: in.Name, To: r.PostForm.Get("to")}
		v.EmailErrs = s.errorsFrom(r, err, func(f string) (string, string, bool) {
			switch f {
			case "name":
				return "email_name", "Name", true
			case "to":
				return "to", "Addresses", true
			}
			return "", "", false
		})
	} else {
		// The secret is never sent back into the form.
		v.Webhook = channelForm{Name: in.Name, URL: in.URL}
		v.WebhookErrs = s.errorsFrom(r, err, func(f string) (string, string, bool) {
			switch f {
			case "name":
				return "name", "Name", true
			case "url":
				return "url", "URL", true
			case "secret":
				return "secret", "Signing secret", true
			}
			return "", "", false
		})
	}
	s.renderAlerts(w, r, http.StatusUnprocessableEntity, v, nil)
	return nil
}

// alertIDs reads the platform and the named sub-id of the path.
func (s *server) alertIDs(r *http.Request, sub string) (*myt.Platform, int64, error) {
	p, err := s.platformFor(r)
	if err != nil {
		return nil, 0, err
	}
	id, err := myt.ParseID(r.PathValue(sub))
	return p, id, err
}

func (s *server) alertChannelDelete(w http.ResponseWriter, r *http.Request) error {
	p, id, err := s.alertIDs(r, "channel")
	if err != nil {
		return err
	}
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	if err := svc.DeleteChannel(r.Context(), p.ID, id); err != nil {
		return err
	}
	http.Redirect(w, r, alertsURL(p, "channel-deleted", "#channels"), http.StatusSeeOther)
	return nil
}

// alertChannelTest sends a test and answers the page with its outcome
// (a test is not a change to come back to: no redirect).
func (s *server) alertChannelTest(w http.ResponseWriter, r *http.Request) error {
	p, id, err := s.alertIDs(r, "channel")
	if err != nil {
		return err
	}
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	c, err := svc.SendTest(r.Context(), p.ID, id)
	if c.ID == 0 && err != nil {
		return err
	}
	v, verr := s.alertsView(w, r, p)
	if verr != nil {
		return verr
	}
	v.Test = &testOutcome{Channel: c.Name}
	if err != nil {
		v.Test.Err = err.Error()
	}
	s.renderAlerts(w, r, http.StatusOK, v, nil)
	return nil
}

func (s *server) alertRuleUpdate(w http.ResponseWriter, r *http.Request) error {
	p, id, err := s.alertIDs(r, "rule")
	if err != nil {
		return err
	}
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	f := r.PostForm
	enabled := f.Get("enabled") != ""
	patch := alert.RulePatch{Enabled: &enabled}
	var fields []myt.FieldError
	if t, err := strconv.ParseFloat(strings.TrimSpace(f.Get("threshold")), 64); err != nil {
		fields = append(fields, myt.FieldError{Field: "threshold", Message: "must be a number"})
	} else {
		patch.Threshold = &t
	}
	for _, d := range []struct {
		name, field string
		dst         **time.Duration
	}{{"for", "for", &patch.For}, {"clear_for", "clearFor", &patch.ClearFor}} {
		v, err := time.ParseDuration(strings.TrimSpace(f.Get(d.name)))
		if err != nil {
			fields = append(fields, myt.FieldError{Field: d.field, Message: "must be a duration such as 5m, 90s or 1h"})
			continue
		}
		*d.dst = &v
	}
	if len(fields) > 0 {
		err = &myt.Error{Code: myt.EINVALID, Message: "The rule was not saved.", Fields: fields}
	} else {
		_, err = svc.UpdateRule(r.Context(), p.ID, id, patch)
	}
	if err == nil {
		http.Redirect(w, r, alertsURL(p, "rule-saved", fmt.Sprintf("#rule-%d", id)), http.StatusSeeOther)
		return nil
	}
	if myt.ErrorCode(err) != myt.EINVALID {
		return err
	}
	v, verr := s.alertsView(w, r, p)
	if verr != nil {
		return verr
	}
	for _, row := range v.Rules {
		if row.ID != id {
			continue
		}
		row.Enabled, row.Threshold, row.For, row.ClearFor = enabled, f.Get("threshold"), f.Get("for"), f.Get("clear_for")
		prefix := fmt.Sprintf("rule-%d-", id)
		row.Errs = s.errorsFrom(r, err, func(path string) (string, string, bool) {
			switch path {
			case "threshold":
				return prefix + "threshold", "Threshold", true
			case "for":
				return prefix + "for", "Fires after", true
			case "clearFor":
				return prefix + "clear_for", "Resolves after", true
			}
			return "", "", false
		})
		s.renderAlerts(w, r, http.StatusUnprocessableEntity, v, nil)
		return nil
	}
	return errors.New("alert rule vanished while saving")
}
