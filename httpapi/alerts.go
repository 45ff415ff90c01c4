package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
)

// Alert channels, rules and history of a platform (docs/alert.md). Every
// route finds the platform as its owner first (alert.Service), so
// another user's platform is 404.

// AlertChannelRequest is the body of POST
// /api/v1/platforms/{id}/alerts/channels: a webhook (url, optional
// secret: sealed, never returned) or an email channel (to).
type AlertChannelRequest struct {
	Name string            `json:"name"`
	Kind alert.ChannelKind `json:"kind,omitempty"` // webhook (default) or email
	URL  string            `json:"url,omitempty"`
	// Secret signs a webhook's requests (X-MyT-Signature).
	Secret string   `json:"secret,omitempty"`
	To     []string `json:"to,omitempty"`
}

// AlertChannelPatch is the body of PATCH
// /api/v1/platforms/{id}/alerts/channels/{channel}; absent fields stay.
// "secret": "" removes a webhook's secret.
type AlertChannelPatch struct {
	Name   *string  `json:"name,omitempty"`
	URL    *string  `json:"url,omitempty"`
	Secret *string  `json:"secret,omitempty"`
	To     []string `json:"to,omitempty"`
}

// AlertRule is a rule as the API shows it; For and ClearFor are Go
// durations ("2m0s").
type AlertRule struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Kind      alert.Kind `json:"kind"`
	Component string     `json:"component,omitempty"`
	Threshold float64    `json:"threshold"`
	For       string     `json:"for"`
	ClearFor  string     `json:"clearFor"`
	Enabled   bool       `json:"enabled"`
	// State is ok, pending or firing; Since when it began (pending,
	// firing).
	State alert.State `json:"state"`
	Since *time.Time  `json:"since,omitempty"`
}

// AlertRulePatch is the body of PATCH
// /api/v1/platforms/{id}/alerts/rules/{rule}; absent fields stay.
type AlertRulePatch struct {
	Enabled   *bool    `json:"enabled,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	For       *string  `json:"for,omitempty"`
	ClearFor  *string  `json:"clearFor,omitempty"`
}

// AlertTestResponse answers POST .../channels/{channel}/test: whether
// the receiver (or the SMTP relay) took the test notification, and why
// not.
type AlertTestResponse struct {
	Channel   alert.Channel `json:"channel"`
	Delivered bool          `json:"delivered"`
	Error     string        `json:"error,omitempty"`
}

// AlertEvents answers GET /api/v1/platforms/{id}/alerts/events: a page of
// the history, newest first; Next, when set, is the "before" of the next
// (older) page.
type AlertEvents struct {
	Events []alert.Event `json:"events"`
	Next   int64         `json:"next,omitempty"`
}

func ruleView(r alert.Rule) AlertRule {
	v := AlertRule{ID: r.ID, Name: r.Name, Kind: r.Kind, Component: r.Component, Threshold: r.Threshold,
		For: r.For.String(), ClearFor: r.ClearFor.String(), Enabled: r.Enabled, State: r.State}
	if v.State == "" {
		v.State = alert.StateOK
	}
	if !r.Since.IsZero() {
		since := r.Since.UTC()
		v.Since = &since
	}
	return v
}

func (s *Server) alertService() (*alert.Service, error) {
	if s.cfg.Alerts == nil {
		return nil, myt.Errorf(myt.ENOTFOUND, "Alerting is not enabled on this server.")
	}
	return s.cfg.Alerts, nil
}

// alertPath reads the {id} platform and the named sub-id of the path.
func alertPath(r *http.Request, sub string) (platformID, id int64, err error) {
	if platformID, err = myt.ParseID(r.PathValue("id")); err != nil {
		return 0, 0, err
	}
	if sub != "" {
		if id, err = myt.ParseID(r.PathValue(sub)); err != nil {
			return 0, 0, err
		}
	}
	return platformID, id, nil
}

func (s *Server) listAlertChannels(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, _, err := alertPath(r, "")
	if err != nil {
		return err
	}
	cs, err := svc.Channels(r.Context(), pid)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(cs))
}

func (s *Server) createAlertChannel(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, _, err := alertPath(r, "")
	if err != nil {
		return err
	}
	// Ownership first, so another user's id is 404 even with a bad body.
	if _, err := s.cfg.Platforms.FindPlatformByID(r.Context(), pid); err != nil {
		return err
	}
	var req AlertChannelRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c, err := svc.AddChannel(r.Context(), pid, alert.ChannelInput{Name: req.Name, Kind: req.Kind, URL: req.URL, Secret: req.Secret, To: req.To})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/platforms/"+strconv.FormatInt(pid, 10)+"/alerts/channels/"+strconv.FormatInt(c.ID, 10))
	s.log.Info("alert channel added", "user", myt.UserFromContext(r.Context()).Username, "platform", pid, "channel", c.ID, "kind", c.Kind)
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) updateAlertChannel(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, cid, err := alertPath(r, "channel")
	if err != nil {
		return err
	}
	if _, err := s.cfg.Platforms.FindPlatformByID(r.Context(), pid); err != nil {
		return err
	}
	var req AlertChannelPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	c, err := svc.UpdateChannel(r.Context(), pid, cid, alert.ChannelPatch{Name: req.Name, URL: req.URL, Secret: req.Secret, To: req.To})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteAlertChannel(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, cid, err := alertPath(r, "channel")
	if err != nil {
		return err
	}
	if err := svc.DeleteChannel(r.Context(), pid, cid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) testAlertChannel(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, cid, err := alertPath(r, "channel")
	if err != nil {
		return err
	}
	c, err := svc.SendTest(r.Context(), pid, cid)
	if c.ID == 0 && err != nil {
		return err // no such channel, or not yours
	}
	res := AlertTestResponse{Channel: c, Delivered: err == nil}
	if err != nil {
		res.Error = err.Error()
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) listAlertRules(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, _, err := alertPath(r, "")
	if err != nil {
		return err
	}
	rules, err := svc.Rules(r.Context(), pid)
	if err != nil {
		return err
	}
	out := make([]AlertRule, 0, len(rules))
	for _, rl := range rules {
		out = append(out, ruleView(rl))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateAlertRule(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, rid, err := alertPath(r, "rule")
	if err != nil {
		return err
	}
	if _, err := s.cfg.Platforms.FindPlatformByID(r.Context(), pid); err != nil {
		return err
	}
	var req AlertRulePatch
	if err := decode(r, &req); err != nil {
		return err
	}
	p := alert.RulePatch{Enabled: req.Enabled, Threshold: req.Threshold}
	var fields []myt.FieldError
	for _, d := range []struct {
		field string
		in    *string
		out   **time.Duration
	}{{"for", req.For, &p.For}, {"clearFor", req.ClearFor, &p.ClearFor}} {
		if d.in == nil {
			continue
		}
		v, err := time.ParseDuration(*d.in)
		if err != nil {
			fields = append(fields, myt.FieldError{Field: d.field, Message: "must be a duration such as 5m or 90s"})
			continue
		}
		*d.out = &v
	}
	if len(fields) > 0 {
		return &myt.Error{Code: myt.EINVALID, Message: "The rule's settings are not valid.", Fields: fields}
	}
	rl, err := svc.UpdateRule(r.Context(), pid, rid, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ruleView(rl))
}

func (s *Server) listAlertEvents(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.alertService()
	if err != nil {
		return err
	}
	pid, _, err := alertPath(r, "")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, before := 50, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > alert.MaxEvents {
			return &myt.Error{Code: myt.EINVALID, Message: "The query is not valid.", Fields: []myt.FieldError{{Field: "limit", Message: "must be 1-200"}}}
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return &myt.Error{Code: myt.EINVALID, Message: "The query is not valid.", Fields: []myt.FieldError{{Field: "before", Message: "must be an event id"}}}
		}
		before = n
	}
	evs, next, err := svc.Events(r.Context(), pid, before, limit)
	if err != nil {
		return err
	}
	res := AlertEvents{Events: nonNil(evs), Next: next}
	for i := range res.Events {
		res.Events[i].Deliveries = nonNil(res.Events[i].Deliveries)
	}
	return writeJSON(w, http.StatusOK, res)
}
