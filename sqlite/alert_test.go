package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/sqlite"
)

func (f *fixture) localPlatform(ctx context.Context, name string) *myt.Platform {
	f.t.Helper()
	d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: " + name + "}\nspec:\n  target: {provider: local}\n  database: {kind: timescaledb}\n"))
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := f.svc.Platforms.CreatePlatform(ctx, d)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// TestAlertChannelCRUD: webhook and email channels are added, listed,
// changed and deleted per platform; a webhook's URL (with its token) and
// secret are sealed, so neither is in the database file, and only the
// host is listed; another platform's channel is not found.
func TestAlertChannelCRUD(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	p := f.localPlatform(ctx, "shed")
	other := f.localPlatform(ctx, "barn")
	s := sqlite.NewAlertStore(f.db)
	const token, whsec = "tok-9f8e7d6c5b4a", "whsec-abcdef-0123456789"

	hook, err := s.AddChannel(ctx, p.ID, "ops", alert.Webhook{URL: "https://hooks.example.com/in?token=" + token, Secret: whsec})
	if err != nil {
		t.Fatal(err)
	}
	if hook.Kind != alert.ChannelWebhook || !hook.Signed || hook.Host != "hooks.example.com" || hook.ID == 0 || hook.Created.IsZero() {
		t.Errorf("webhook channel %+v", hook)
	}
	mail, err := s.AddEmailChannel(ctx, p.ID, "on-call", []string{"ops@example.com", " lead@example.com "})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Channels(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != hook.ID || got[1].Kind != alert.ChannelEmail || !slices.Equal(got[1].To, []string{"ops@example.com", "lead@example.com"}) {
		t.Fatalf("channels %+v", got)
	}
	if cs, _ := s.Channels(ctx, other.ID); len(cs) != 0 {
		t.Errorf("the other platform lists %+v", cs)
	}
	if _, err := s.Channel(ctx, other.ID, hook.ID); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("a channel through another platform: %v, want not found", err)
	}
	w, err := s.Webhook(ctx, hook)
	if err != nil || w.Secret != whsec || w.URL != "https://hooks.example.com/in?token="+token {
		t.Errorf("webhook opens to %+v %v", w, err)
	}
	for _, file := range []string{f.path, f.path + "-wal"} {
		b, _ := os.ReadFile(file)
		if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(whsec)) {
			t.Errorf("%s holds the webhook's token or secret in clear", file)
		}
	}

	// Rename, new URL without a secret; new recipients.
	hook.Name = "pager"
	hook, err = s.UpdateChannel(ctx, hook, &alert.Webhook{URL: "http://10.0.0.9:8080/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if hook.Name != "pager" || hook.Signed || hook.Host != "10.0.0.9:8080" {
		t.Errorf("updated webhook %+v", hook)
	}
	if w, _ := s.Webhook(ctx, hook); w.URL != "http://10.0.0.9:8080/hook" || w.Secret != "" {
		t.Errorf("updated webhook opens to %+v", w)
	}
	mail.To = []string{"night@example.com"}
	if _, err := s.UpdateChannel(ctx, mail, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Channel(ctx, p.ID, mail.ID); !slices.Equal(c.To, []string{"night@example.com"}) || c.Name != "on-call" {
		t.Errorf("updated email channel %+v", c)
	}
	if _, err := s.UpdateChannel(ctx, mail, &alert.Webhook{URL: "https://x.example"}); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("a URL on an email channel: %v, want invalid", err)
	}

	// A delivery to the channel, then its deletion: the channel, its
	// sealed part and its deliveries go; the event stays.
	if err := s.EnsureDefaults(ctx, p.ID, alert.Defaults()); err != nil {
		t.Fatal(err)
	}
	rules, _ := s.Rules(ctx, p.ID)
	ev := &alert.Event{PlatformID: p.ID, RuleID: rules[0].ID, Rule: rules[0].Name, Kind: rules[0].Kind, State: alert.Fired, At: f.now}
	if err := s.SaveState(ctx, rules[0], ev); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, ev.ID, alert.Delivery{ChannelID: hook.ID, Status: alert.Delivered, Attempts: 1, At: f.now}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChannel(ctx, other.ID, hook.ID); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("delete through another platform: %v, want not found", err)
	}
	if err := s.DeleteChannel(ctx, p.ID, hook.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChannel(ctx, p.ID, hook.ID); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("second delete: %v, want not found", err)
	}
	if _, err := s.Webhook(ctx, hook); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("the deleted webhook's sealed part: %v, want not found", err)
	}
	if cs, _ := s.Channels(ctx, p.ID); len(cs) != 1 || cs[0].ID != mail.ID {
		t.Errorf("after delete: %+v", cs)
	}
	evs, err := s.Events(ctx, p.ID, 0, 10)
	if err != nil || len(evs) != 1 || len(evs[0].Deliveries) != 0 {
		t.Errorf("history after delete %+v %v, want the event without deliveries", evs, err)
	}
}

// TestAlertRulesAndHistoryPages: UpdateRule changes a rule's settings and
// disabling it resets its state; the history pages backwards with before.
func TestAlertRulesAndHistoryPages(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	p := f.localPlatform(ctx, "shed")
	s := sqlite.NewAlertStore(f.db)
	if err := s.EnsureDefaults(ctx, p.ID, alert.Defaults()); err != nil {
		t.Fatal(err)
	}
	rules, _ := s.Rules(ctx, p.ID)
	r := rules[1]
	r.State, r.Since = alert.StateFiring, f.now
	for i := range 5 {
		ev := &alert.Event{PlatformID: p.ID, RuleID: r.ID, Rule: r.Name, Kind: r.Kind, State: []string{alert.Fired, alert.Resolved}[i%2], At: f.now.Add(time.Duration(i) * time.Minute)}
		if err := s.SaveState(ctx, r, ev); err != nil {
			t.Fatal(err)
		}
	}
	r.Enabled, r.Threshold, r.For, r.ClearFor = false, 500, 10*time.Minute, 90*time.Second
	if err := s.UpdateRule(ctx, r); err != nil {
		t.Fatal(err)
	}
	rules, _ = s.Rules(ctx, p.ID)
	if g := rules[1]; g.Enabled || g.Threshold != 500 || g.For != 10*time.Minute || g.ClearFor != 90*time.Second || g.State != alert.StateOK || !g.Since.IsZero() {
		t.Errorf("updated rule %+v", g)
	}
	r.PlatformID = p.ID + 1000
	if err := s.UpdateRule(ctx, r); myt.ErrorCode(err) != myt.ENOTFOUND {
		t.Errorf("a rule through another platform: %v, want not found", err)
	}

	page1, err := s.Events(ctx, p.ID, 0, 2)
	if err != nil || len(page1) != 2 {
		t.Fatalf("page 1: %+v %v", page1, err)
	}
	page2, _ := s.Events(ctx, p.ID, page1[1].ID, 2)
	page3, _ := s.Events(ctx, p.ID, page2[1].ID, 2)
	var ids []int64
	for _, pg := range [][]alert.Event{page1, page2, page3} {
		for _, e := range pg {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) != 5 || !slices.IsSortedFunc(ids, func(a, b int64) int { return int(b - a) }) || len(page3) != 1 {
		t.Errorf("pages gave ids %v, want 5 events newest first", ids)
	}
}
