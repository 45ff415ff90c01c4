package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/myt-iot/myt"
)

// A sliding session expires its TTL after its last use, not after its
// creation: used every so often it lasts, left alone it ends.
func TestSlidingSessionExpiresIdle(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	token, sess, err := f.svc.Sessions.CreateSession(ctx, myt.AuthFromContext(ctx), myt.SessionAPI, "myt login", myt.Lifetime{TTL: 24 * time.Hour, Sliding: true})
	if err != nil {
		t.Fatal(err)
	}
	if sess.Expires == nil || sess.Expires.Sub(f.now).Round(time.Second) != 24*time.Hour {
		t.Fatalf("a new sliding token expires %v, want 24h from now", sess.Expires)
	}
	for i := range 3 { // used every 20 hours: 60 hours in all
		f.now = f.now.Add(20 * time.Hour)
		_, got, err := f.svc.Sessions.Authenticate(context.Background(), token)
		if err != nil {
			t.Fatalf("use %d, 20 h after the last: %v", i+1, err)
		}
		if got.LastUsed == nil || got.Expires == nil || got.Expires.Sub(*got.LastUsed) != 24*time.Hour {
			t.Fatalf("use %d: last used %v, expires %v", i+1, got.LastUsed, got.Expires)
		}
	}
	ts, _ := f.svc.Sessions.FindSessions(ctx, myt.SessionAPI)
	if len(ts) != 1 || ts[0].LastUsed == nil || !ts[0].LastUsed.Equal(f.now.UTC().Truncate(time.Millisecond)) {
		t.Errorf("the token list does not show the last use: %+v", ts)
	}
	f.now = f.now.Add(25 * time.Hour)
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), token); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Fatalf("a token unused for longer than its TTL: %v", err)
	}
}

// A password change ends every other session and token of the user, and
// keeps the one that made it (and other users' sessions).
func TestChangePasswordEndsOtherSessions(t *testing.T) {
	f := newFixture(t)
	ada := f.user(context.Background(), "ada", "correct horse battery")
	if _, err := f.svc.Users.CreateUser(ada, myt.UserCreate{Username: "bob", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	bob := f.login("bob", "correct horse battery")
	mk := func(ctx context.Context, kind string) (string, *myt.Session) {
		token, sess, err := f.svc.Sessions.CreateSession(ctx, myt.AuthFromContext(ctx), kind, kind, myt.Lifetime{TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return token, sess
	}
	current, _ := mk(ada, myt.SessionWeb)
	otherWeb, _ := mk(ada, myt.SessionWeb)
	otherAPI, _ := mk(ada, myt.SessionAPI)
	bobs, _ := mk(bob, myt.SessionAPI)
	a, _, err := f.svc.Sessions.Authenticate(context.Background(), current)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Users.ChangePassword(myt.NewContextWithAuth(context.Background(), a), "correct horse battery", "another fine password"); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"the session that changed it": current, "bob's token": bobs} {
		if _, _, err := f.svc.Sessions.Authenticate(context.Background(), tok); err != nil {
			t.Errorf("%s ended: %v", name, err)
		}
	}
	for name, tok := range map[string]string{"another browser session": otherWeb, "an API token": otherAPI} {
		if _, _, err := f.svc.Sessions.Authenticate(context.Background(), tok); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
			t.Errorf("%s still works after the password change: %v", name, err)
		}
	}
}
