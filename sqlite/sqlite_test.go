package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

var fast = vault.Params{Time: 1, Memory: 1024, Threads: 1}

type fixture struct {
	t    *testing.T
	path string
	key  []byte
	db   *sqlite.DB
	svc  *sqlite.Services
	now  time.Time // the store's clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "myt.db"), key: vault.NewKey(), now: time.Now()}
	f.open()
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	db, err := sqlite.Open(context.Background(), f.path, sqlite.Options{ServerKey: f.key, Params: fast, Now: func() time.Time { return f.now }})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { db.Close() })
	f.db, f.svc = db, sqlite.NewServices(db)
}

// login creates (if needed) and authenticates a user, returning a context
// carrying the principal.
func (f *fixture) user(ctx context.Context, name, pw string) context.Context {
	f.t.Helper()
	if _, err := f.svc.Users.CreateUser(ctx, myt.UserCreate{Username: name, Password: pw}); err != nil {
		f.t.Fatalf("create %s: %v", name, err)
	}
	return f.login(name, pw)
}

func (f *fixture) login(name, pw string) context.Context {
	f.t.Helper()
	a, err := f.svc.Users.Authenticate(context.Background(), name, pw)
	if err != nil {
		f.t.Fatalf("login %s: %v", name, err)
	}
	return myt.NewContextWithAuth(context.Background(), a)
}

const awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func (f *fixture) addAWS(ctx context.Context, name string) *myt.Credential {
	f.t.Helper()
	c := &myt.Credential{Name: name, Kind: "aws", Public: map[string]string{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "region": "eu-west-1"}}
	if err := f.svc.Credentials.CreateCredential(ctx, c, myt.Secret{"secret_access_key": awsSecret}); err != nil {
		f.t.Fatalf("create credential: %v", err)
	}
	return c
}

func TestFirstUserIsAdminThenSignupIsClosed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.svc.Users.CreateUser(ctx, myt.UserCreate{Username: "ada", Password: "correct horse battery"})
	if err != nil || !u.Admin {
		t.Fatalf("first user = %+v, %v; want an admin", u, err)
	}
	_, err = f.svc.Users.CreateUser(ctx, myt.UserCreate{Username: "eve", Password: "correct horse battery", Admin: true})
	if myt.ErrorCode(err) != myt.EFORBIDDEN {
		t.Fatalf("anonymous second sign-up: %v, want forbidden", err)
	}
	admin := f.login("ada", "correct horse battery")
	inv, err := f.svc.Admin.CreateInvite(admin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := f.svc.Users.CreateUser(ctx, myt.UserCreate{Username: "bob", Password: "correct horse battery", Admin: true, Invite: inv.Code})
	if err != nil || bob.Admin {
		t.Fatalf("invited sign-up = %+v, %v; want a non-admin user", bob, err)
	}
	if _, err := f.svc.Users.CreateUser(ctx, myt.UserCreate{Username: "carl", Password: "correct horse battery", Invite: inv.Code}); myt.ErrorCode(err) != myt.EFORBIDDEN {
		t.Fatalf("reused invitation: %v, want forbidden", err)
	}
	if err := f.svc.Admin.UpdateSettings(myt.NewContextWithAuth(ctx, &myt.Auth{User: bob}), myt.Settings{OpenSignup: true}); myt.ErrorCode(err) != myt.EFORBIDDEN {
		t.Fatalf("non-admin changed settings: %v", err)
	}
	if err := f.svc.Admin.UpdateSettings(admin, myt.Settings{OpenSignup: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Users.CreateUser(ctx, myt.UserCreate{Username: "dora", Password: "correct horse battery"}); err != nil {
		t.Fatalf("open sign-up: %v", err)
	}
	_, err = f.svc.Users.CreateUser(admin, myt.UserCreate{Username: "DORA", Password: "correct horse battery"})
	if myt.ErrorCode(err) != myt.ECONFLICT {
		t.Fatalf("duplicate username (case-insensitive): %v", err)
	}
	_, err = f.svc.Users.CreateUser(admin, myt.UserCreate{Username: "x", Password: "short"})
	if fields := myt.ErrorFields(err); len(fields) != 2 || fields[0].Field != "username" || fields[1].Field != "password" {
		t.Fatalf("bad input errors = %v", err)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	admin := f.user(context.Background(), "ada", "correct horse battery")
	for _, tc := range []struct{ user, pw string }{{"ada", "wrong password!"}, {"nobody", "correct horse battery"}} {
		_, err := f.svc.Users.Authenticate(context.Background(), tc.user, tc.pw)
		if myt.ErrorCode(err) != myt.EUNAUTHORIZED || myt.ErrorMessage(err) != "Wrong username or password." {
			t.Errorf("login %s/%s: %v", tc.user, tc.pw, err)
		}
	}
	bob, err := f.svc.Users.CreateUser(admin, myt.UserCreate{Username: "bob", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	bobCtx := f.login("bob", "correct horse battery")
	token, _, err := f.svc.Sessions.CreateSession(bobCtx, myt.AuthFromContext(bobCtx), myt.SessionAPI, "laptop", myt.Lifetime{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	yes := true
	if _, err := f.svc.Users.UpdateUser(admin, bob.ID, myt.UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Users.Authenticate(context.Background(), "bob", "correct horse battery"); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Errorf("disabled user logged in: %v", err)
	}
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), token); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Errorf("disabled user's token still works: %v", err)
	}
	if _, err := f.svc.Users.UpdateUser(admin, myt.UserFromContext(admin).ID, myt.UserUpdate{Disabled: &yes}); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("admin disabled themselves: %v", err)
	}
}

// A login for an unknown name must cost an argon2id run, as a wrong
// password does, or the time of a refusal tells which names exist. The
// run's cost is its memory, so the test counts bytes allocated, not time.
func TestUnknownUserCostsAnArgon2Run(t *testing.T) {
	params := vault.Params{Time: 1, Memory: 16 * 1024, Threads: 1}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "myt.db"), sqlite.Options{ServerKey: vault.NewKey(), Params: params})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	users := sqlite.NewUserService(db)
	if _, err := users.CreateUser(context.Background(), myt.UserCreate{Username: "ada", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	allocated := func(user, pw string) uint64 {
		t.Helper()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := users.Authenticate(context.Background(), user, pw)
		runtime.ReadMemStats(&after)
		if myt.ErrorCode(err) != myt.EUNAUTHORIZED {
			t.Fatalf("login %s: %v, want unauthorized", user, err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	argon2Memory := uint64(params.Memory) * 1024
	if n := allocated("ada", "wrong password!"); n < argon2Memory {
		t.Fatalf("a wrong password allocated %d bytes, less than one argon2id run (%d): the measure is broken", n, argon2Memory)
	}
	if n := allocated("nobody", "correct horse battery"); n < argon2Memory {
		t.Errorf("an unknown user allocated %d bytes, less than one argon2id run (%d): the refusal is faster than a wrong password's", n, argon2Memory)
	}
}

func TestSessionsCarryTheDataKeyAndExpire(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	f.addAWS(ctx, "prod")
	token, sess, err := f.svc.Sessions.CreateSession(ctx, myt.AuthFromContext(ctx), myt.SessionWeb, "browser", myt.Lifetime{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a, got, err := f.svc.Sessions.Authenticate(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.CSRF) < 32 || strings.Contains(token, got.CSRF) {
		t.Errorf("session CSRF token %q: too short or part of the session token", got.CSRF)
	}
	sec, err := f.svc.Credentials.OpenCredential(myt.NewContextWithAuth(context.Background(), a), 1)
	if err != nil || sec["secret_access_key"] != awsSecret {
		t.Fatalf("credential through the session: %v", err)
	}
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), token+"x"); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Fatalf("altered token accepted: %v", err)
	}
	if err := f.svc.Sessions.DeleteSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), token); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Fatalf("logged-out session accepted: %v", err)
	}

	// A web session ends at its expiry; an API token (no TTL) does not.
	web, _, err := f.svc.Sessions.CreateSession(ctx, myt.AuthFromContext(ctx), myt.SessionWeb, "browser", myt.Lifetime{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	api, _, err := f.svc.Sessions.CreateSession(ctx, myt.AuthFromContext(ctx), myt.SessionAPI, "ci", myt.Lifetime{})
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(59 * time.Minute)
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), web); err != nil {
		t.Fatalf("session before its expiry: %v", err)
	}
	f.now = f.now.Add(2 * time.Minute)
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), web); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Fatalf("expired session accepted: %v", err)
	}
	if _, _, err := f.svc.Sessions.Authenticate(context.Background(), api); err != nil {
		t.Fatalf("API token expired: %v", err)
	}
	if ss, _ := f.svc.Sessions.FindSessions(ctx, myt.SessionWeb); len(ss) != 0 {
		t.Errorf("expired sessions still listed: %d", len(ss))
	}
}

// The database file (and its WAL) must never hold a password, a data key or
// a credential secret in the clear.
func TestDatabaseHoldsNoSecrets(t *testing.T) {
	f := newFixture(t)
	const pw = "correct horse battery staple"
	ctx := f.user(context.Background(), "ada", pw)
	f.addAWS(ctx, "prod")
	token, _, err := f.svc.Sessions.CreateSession(ctx, myt.AuthFromContext(ctx), myt.SessionAPI, "ci", myt.Lifetime{})
	if err != nil {
		t.Fatal(err)
	}
	d := myt.NewDesign()
	d.Metadata.Name = "home"
	d.Spec.Target = myt.Target{Provider: "local", DeviceCIDRs: []string{"0.0.0.0/0"}}
	d.Spec.Database.Kind = "influxdb"
	p, err := f.svc.Platforms.CreatePlatform(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	const platformSecret = "platform-secret-Zq8x"
	if err := f.svc.Secrets.Put(context.Background(), p.ID, "grafana_admin", []byte(platformSecret)); err != nil {
		t.Fatal(err)
	}
	if v, err := f.svc.Secrets.Get(context.Background(), p.ID, "grafana_admin"); err != nil || string(v) != platformSecret {
		t.Fatalf("platform secret = %q, %v: the scan below would not see it sealed", v, err)
	}
	if err := f.svc.Secrets.Put(context.Background(), p.ID+1, "grafana_admin", []byte(platformSecret)); err == nil {
		t.Fatal("secret stored for a platform that does not exist")
	}
	dataKey := myt.AuthFromContext(ctx).DataKey
	var files [][]byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(f.path + suffix)
		if err == nil {
			files = append(files, b)
		}
	}
	if len(files) < 2 {
		t.Fatalf("expected the database and its WAL, found %d files", len(files))
	}
	for i, b := range files {
		for name, secret := range map[string][]byte{
			"password": []byte(pw), "aws secret": []byte(awsSecret), "token": []byte(token), "data key": dataKey,
			"platform secret": []byte(platformSecret), "server key": f.key,
		} {
			if bytes.Contains(b, secret) {
				t.Errorf("file %d contains the %s in the clear", i, name)
			}
		}
	}
	// The public part is stored in the clear, as intended: the test above
	// would be vacuous if nothing was written at all.
	found := false
	for _, b := range files {
		found = found || bytes.Contains(b, []byte("AKIAIOSFODNN7EXAMPLE"))
	}
	if !found {
		t.Fatal("the credential's public part is not in the files: the scan looked at the wrong bytes")
	}
}

// A sealed credential copied onto another row (same user) must not open:
// the ciphertext is bound to its row id.
func TestMovedCiphertextFailsToOpen(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	a := f.addAWS(ctx, "prod")
	b := f.addAWS(ctx, "test")
	raw, err := sql.Open("sqlite", "file:"+f.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = ?) WHERE id = ?", a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Credentials.OpenCredential(ctx, b.ID); err == nil {
		t.Fatal("a ciphertext moved to another row opened")
	}
	if sec, err := f.svc.Credentials.OpenCredential(ctx, a.ID); err != nil || sec["secret_access_key"] != awsSecret {
		t.Fatalf("the original row no longer opens: %v", err)
	}
}

func TestPasswordChangeKeepsCredentialsResetLosesThem(t *testing.T) {
	f := newFixture(t)
	admin := f.user(context.Background(), "ada", "correct horse battery")
	if _, err := f.svc.Users.CreateUser(admin, myt.UserCreate{Username: "bob", Password: "bob's first password"}); err != nil {
		t.Fatal(err)
	}
	bob := f.login("bob", "bob's first password")
	c := f.addAWS(bob, "prod")

	if err := f.svc.Users.ChangePassword(bob, "not the password", "bob's second password"); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Fatalf("change with the wrong old password: %v", err)
	}
	// The data key is re-wrapped, not re-derived: a principal without one
	// cannot change the password.
	keyless := myt.NewContextWithAuth(context.Background(), &myt.Auth{User: myt.UserFromContext(bob)})
	if err := f.svc.Users.ChangePassword(keyless, "bob's first password", "bob's second password"); myt.ErrorCode(err) != myt.EUNAUTHORIZED {
		t.Fatalf("change without a data key: %v", err)
	}
	if err := f.svc.Users.ChangePassword(bob, "bob's first password", "bob's second password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Users.Authenticate(context.Background(), "bob", "bob's first password"); err == nil {
		t.Fatal("old password still works")
	}
	bob = f.login("bob", "bob's second password")
	if sec, err := f.svc.Credentials.OpenCredential(bob, c.ID); err != nil || sec["secret_access_key"] != awsSecret {
		t.Fatalf("credential after a password change: %v", err)
	}

	// An admin reset cannot recover the data key: the credential is lost,
	// and the user is told so.
	bobID := myt.UserFromContext(bob).ID
	if err := f.svc.Users.ResetPassword(admin, bobID, "bob's reset password"); err != nil {
		t.Fatal(err)
	}
	bob = f.login("bob", "bob's reset password")
	if !myt.UserFromContext(bob).CredentialsLost {
		t.Fatal("user not told that the credentials are lost")
	}
	cs, err := f.svc.Credentials.FindCredentials(bob, myt.CredentialFilter{})
	if err != nil || len(cs) != 1 || !cs[0].Locked || cs[0].Masked != nil {
		t.Fatalf("credentials after reset = %+v, %v; want one locked, unmasked", cs, err)
	}
	if _, err := f.svc.Credentials.OpenCredential(bob, c.ID); myt.ErrorCode(err) != myt.EINVALID {
		t.Fatalf("locked credential opened: %v", err)
	}
	if err := f.svc.Users.AcknowledgeLostCredentials(bob); err != nil {
		t.Fatal(err)
	}
	cs, _ = f.svc.Credentials.FindCredentials(bob, myt.CredentialFilter{})
	if len(cs) != 0 {
		t.Fatalf("lost credentials not removed: %+v", cs)
	}
	f.addAWS(bob, "prod") // and the name is free again
}

// A taken name is a conflict the user can fix, told apart from other
// failures by SQLite's extended result code.
func TestTakenNamesConflict(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	f.addAWS(ctx, "prod")
	err := f.svc.Credentials.CreateCredential(ctx, &myt.Credential{Name: "prod", Kind: "aws", Public: map[string]string{"access_key_id": "AKIAIOSFODNN7EXAMPLE"}}, myt.Secret{"secret_access_key": awsSecret})
	if fe := myt.ErrorFields(err); myt.ErrorCode(err) != myt.ECONFLICT || len(fe) != 1 || fe[0].Field != "name" {
		t.Errorf("second credential named prod: %v, want a conflict on name", err)
	}
	d := myt.NewDesign()
	d.Metadata.Name = "home"
	d.Spec.Target = myt.Target{Provider: "local", DeviceCIDRs: []string{"0.0.0.0/0"}}
	d.Spec.Database.Kind = "influxdb"
	if _, err := f.svc.Platforms.CreatePlatform(ctx, d); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Platforms.CreatePlatform(ctx, d)
	if fe := myt.ErrorFields(err); myt.ErrorCode(err) != myt.ECONFLICT || len(fe) != 1 || fe[0].Field != "metadata.name" {
		t.Errorf("second platform named home: %v, want a conflict on metadata.name", err)
	}
}

// Users see only their own credentials and platforms; admins are no
// exception for credentials.
func TestIsolation(t *testing.T) {
	f := newFixture(t)
	admin := f.user(context.Background(), "ada", "correct horse battery")
	if _, err := f.svc.Users.CreateUser(admin, myt.UserCreate{Username: "bob", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	bob := f.login("bob", "correct horse battery")
	c := f.addAWS(bob, "bobs-aws")
	d := myt.NewDesign()
	d.Metadata.Name = "greenhouse"
	d.Spec.Target = myt.Target{Provider: "aws", Credentials: "bobs-aws", Region: "eu-west-1", Size: "small", AdminCIDRs: []string{"203.0.113.7/32"}, DeviceCIDRs: []string{"0.0.0.0/0"}, DataVolumeGB: 20}
	d.Spec.Database.Kind = "timescaledb"
	p, err := f.svc.Platforms.CreatePlatform(bob, d)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != myt.StatusDesigned {
		t.Errorf("status = %s", p.Status)
	}
	if _, err := f.svc.Platforms.CreatePlatform(admin, d); myt.ErrorCode(err) != myt.EINVALID {
		t.Errorf("admin used bob's credential by name: %v", err)
	}
	checks := map[string]error{}
	_, checks["FindCredentialByID"] = f.svc.Credentials.FindCredentialByID(admin, c.ID)
	_, checks["OpenCredential"] = f.svc.Credentials.OpenCredential(admin, c.ID)
	checks["DeleteCredential"] = f.svc.Credentials.DeleteCredential(admin, c.ID)
	_, checks["FindPlatformByID"] = f.svc.Platforms.FindPlatformByID(admin, p.ID)
	_, checks["UpdatePlatform"] = f.svc.Platforms.UpdatePlatform(admin, p.ID, d)
	checks["DeletePlatform"] = f.svc.Platforms.DeletePlatform(admin, p.ID)
	for name, err := range checks {
		if myt.ErrorCode(err) != myt.ENOTFOUND {
			t.Errorf("%s on another user's object: %v, want not found", name, err)
		}
	}
	if cs, _ := f.svc.Credentials.FindCredentials(admin, myt.CredentialFilter{}); len(cs) != 0 {
		t.Errorf("admin lists bob's credentials: %+v", cs)
	}
	if ps, _ := f.svc.Platforms.FindPlatforms(admin, myt.PlatformFilter{}); len(ps) != 0 {
		t.Errorf("admin lists bob's platforms: %+v", ps)
	}
	if err := f.svc.Credentials.DeleteCredential(bob, c.ID); myt.ErrorCode(err) != myt.ECONFLICT {
		t.Errorf("deleted a credential a platform uses: %v", err)
	}
	// Still there for bob, after all that.
	if got, err := f.svc.Platforms.FindPlatformByID(bob, p.ID); err != nil || got.Design.Spec.Database.Kind != "timescaledb" {
		t.Fatalf("bob's platform: %v", err)
	}
	// The wrong kind of credential is named in the error.
	gcp := d
	gcp.Metadata.Name = "other"
	gcp.Spec.Target.Provider, gcp.Spec.Target.Zone = "gcp", "europe-west1-b"
	_, err = f.svc.Platforms.CreatePlatform(bob, gcp)
	if fe := myt.ErrorFields(err); len(fe) != 1 || fe[0].Field != "spec.target.credentials" {
		t.Fatalf("wrong credential kind: %v", err)
	}
}

func TestServerKeyRotation(t *testing.T) {
	f := newFixture(t)
	ctx := f.user(context.Background(), "ada", "correct horse battery")
	d := myt.NewDesign()
	d.Metadata.Name = "home"
	d.Spec.Target = myt.Target{Provider: "local", DeviceCIDRs: []string{"0.0.0.0/0"}}
	d.Spec.Database.Kind = "influxdb"
	p, err := f.svc.Platforms.CreatePlatform(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Secrets.Put(context.Background(), p.ID, "grafana_admin", []byte("s3cret-value")); err != nil {
		t.Fatal(err)
	}
	newKey := vault.NewKey()
	n, err := f.db.RotateServerKey(context.Background(), newKey)
	if err != nil || n != 1 {
		t.Fatalf("rotate = %d, %v", n, err)
	}
	if v, err := f.svc.Secrets.Get(context.Background(), p.ID, "grafana_admin"); err != nil || string(v) != "s3cret-value" {
		t.Fatalf("after rotation: %q, %v", v, err)
	}
	f.db.Close()
	if _, err := sqlite.Open(context.Background(), f.path, sqlite.Options{ServerKey: f.key, Params: fast}); err == nil {
		t.Fatal("the database opened with the old server key")
	}
	f.key = newKey
	f.open()
	if v, err := f.svc.Secrets.Get(context.Background(), p.ID, "grafana_admin"); err != nil || string(v) != "s3cret-value" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
}
