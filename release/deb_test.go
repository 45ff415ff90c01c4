package release_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/testenv"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/vault"
)

// inContainer runs a shell script in a container of the private engine,
// with stdin (secrets travel there, never in argv), and returns its
// combined output.
func inContainer(t *testing.T, e *testenv.Env, container, stdin, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := e.DockerCmd(ctx, "exec", "-i", container, "sh", "-ec", script)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustIn(t *testing.T, e *testenv.Env, container, stdin, script string) string {
	t.Helper()
	out, err := inContainer(t, e, container, stdin, script)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", container, script, err, out)
	}
	return out
}

// waitHealthz waits until MyT in the container answers /healthz on addr.
func waitHealthz(t *testing.T, e *testenv.Env, container, addr string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := inContainer(t, e, container, "", "curl -fsS http://"+addr+"/healthz")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /healthz never answered: %v\n%s", container, err, out)
		}
		time.Sleep(time.Second)
	}
}

// openSavedCredential opens a copy of a MyT data directory (a tar stream
// of /var/lib/myt) with this source's store, signs in as username and
// opens the credential named name: what the upgraded server does before a
// deploy.
func openSavedCredential(t *testing.T, data io.Reader, username, password, name string) myt.Secret {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	tr := tar.NewReader(data)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(h.Name, "myt/")))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, _, err := vault.LoadServerKey(dir)
	if err != nil {
		t.Fatalf("server key of the upgraded data dir: %v", err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.DBFile), sqlite.Options{ServerKey: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open the upgraded store: %v", err)
	}
	defer db.Close()
	auth, err := sqlite.NewUserService(db).Authenticate(ctx, username, password)
	if err != nil {
		t.Fatalf("sign in as %s on the upgraded store: %v", username, err)
	}
	ctx = myt.NewContextWithAuth(ctx, auth)
	creds := sqlite.NewCredentialService(db)
	cs, err := creds.FindCredentials(ctx, myt.CredentialFilter{Name: &name})
	if err != nil || len(cs) != 1 {
		t.Fatalf("credential %q after the upgrade: %v, %v", name, cs, err)
	}
	secret, err := creds.OpenCredential(ctx, cs[0].ID)
	if err != nil {
		t.Fatalf("open credential %q after the upgrade: %v", name, err)
	}
	return secret
}

// TestDeb installs the previous release's .deb on a systemd test host
// (Debian 12, systemd as PID 1), checks the unit with systemd-analyze
// verify and the running service, saves an account and a credential, then
// upgrades to this release's .deb and checks that the service came back
// with the account, the credential (which still opens) and the edited
// configuration; a purge then removes what the package made and only
// that.
func TestDeb(t *testing.T) {
	e := testenv.Require(t)
	prev := release(t, prevVersion, "TARGETS=linux/amd64", "PACKAGES=deb")
	cur := release(t, version)
	h := e.SystemdHost(t)
	c := h.Container
	for _, deb := range []string{
		filepath.Join(prev, "myt_"+prevVersion+"_amd64.deb"),
		filepath.Join(cur, "myt_"+debVersion+"_amd64.deb"),
	} {
		e.Docker(t, "cp", deb, c+":/root/")
	}

	// Install the previous release: no question asked, service running.
	mustIn(t, e, c, "", "dpkg -i /root/myt_"+prevVersion+"_amd64.deb </dev/null")
	out := mustIn(t, e, c, "", "systemd-analyze verify /usr/lib/systemd/system/myt.service 2>&1 && echo rc=0 || echo rc=$?")
	if strings.TrimSpace(out) != "rc=0" {
		t.Errorf("systemd-analyze verify myt.service:\n%s", out)
	}
	waitHealthz(t, e, c, "127.0.0.1:8080")
	out = mustIn(t, e, c, "", `pid=$(systemctl show -p MainPID --value myt); ps -o user= -p "$pid"; ss -Hltn 'sport = :8080' | awk '{print $4}'; stat -c '%U %a' /var/lib/myt; stat -c '%U:%G %a' /etc/myt/myt.env`)
	if want := "myt\n127.0.0.1:8080\nmyt 700\nroot:myt 640\n"; out != want {
		t.Errorf("service user, listen address, data dir and config modes:\n%s\nwant\n%s", out, want)
	}
	sec := mustIn(t, e, c, "", "systemd-analyze security myt.service --no-pager 2>&1 | tail -1")
	t.Logf("systemd-analyze security: %s", strings.TrimSpace(sec))
	for _, want := range []string{"ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet="} {
		if !strings.Contains(mustIn(t, e, c, "", "systemctl cat myt.service"), "\n"+want+"\n") {
			t.Errorf("unit lacks %s", want)
		}
	}
	for _, f := range []string{"/usr/share/bash-completion/completions/myt", "/usr/lib/myt/worker/linux-arm64/myt"} {
		mustIn(t, e, c, "", "test -s "+f)
	}
	// The test image's dpkg leaves out /usr/share/man: look in the package.
	if out := mustIn(t, e, c, "", "dpkg-deb -c /root/myt_"+prevVersion+"_amd64.deb"); !strings.Contains(out, "./usr/share/man/man1/myt-serve.1.gz\n") {
		t.Errorf("the .deb holds no man page myt-serve(1):\n%s", out)
	}

	// An account, a token for the CLI and a saved credential, made as a
	// user would; an edit of the configuration.
	password, secret := "correct horse battery "+fmt.Sprint(time.Now().UnixNano()), "s3cret-"+fmt.Sprint(time.Now().UnixNano())
	cli := "export MYT_CONFIG=/root/cli.json MYT_SERVER=http://127.0.0.1:8080; "
	mustIn(t, e, c, password, cli+"myt login --setup --username ada --password-stdin")
	mustIn(t, e, c, secret, cli+"myt creds add openstack --name lab --auth-url https://keystone.example.org:5000/v3 --username ada --project-name iot --secret-stdin")
	mustIn(t, e, c, "", "echo '# edited by the admin' >>/etc/myt/myt.env && sed -i 's/^MYT_LOG_FORMAT=text/MYT_LOG_FORMAT=json/' /etc/myt/myt.env")

	// Upgrade.
	mustIn(t, e, c, "", "dpkg -i /root/myt_"+debVersion+"_amd64.deb </dev/null")
	if out := mustIn(t, e, c, "", "myt version"); !strings.HasPrefix(out, "myt "+version+"\n") {
		t.Errorf("after the upgrade, myt version:\n%s", out)
	}
	waitHealthz(t, e, c, "127.0.0.1:8080")
	if out := mustIn(t, e, c, "", "cat /proc/$(systemctl show -p MainPID --value myt)/environ | tr '\\0' '\\n' | grep ^MYT_LOG_FORMAT"); !strings.Contains(out, "MYT_LOG_FORMAT=json") {
		t.Errorf("the upgraded service does not run with the edited configuration:\n%s", out)
	}
	if out := mustIn(t, e, c, "", "tail -1 /etc/myt/myt.env; ls /etc/myt"); out != "# edited by the admin\nmyt.env\n" {
		t.Errorf("the upgrade changed /etc/myt:\n%s", out)
	}
	// The account still signs in on the running server and sees its credential.
	mustIn(t, e, c, password, cli+"myt login --username ada --password-stdin")
	if out := mustIn(t, e, c, "", cli+"myt creds list"); !strings.Contains(out, "lab") {
		t.Errorf("myt creds list after the upgrade:\n%s", out)
	}
	// ... and the credential still opens with the account's password.
	mustIn(t, e, c, "", "systemctl stop myt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tarOut, err := e.DockerCmd(ctx, "exec", c, "tar", "-C", "/var/lib", "-c", "myt").Output()
	if err != nil {
		t.Fatalf("tar /var/lib/myt: %v", err)
	}
	got := openSavedCredential(t, strings.NewReader(string(tarOut)), "ada", password, "lab")
	if got["password"] != secret {
		t.Errorf("the credential saved before the upgrade opened to a different secret")
	}

	// Remove keeps the data and the configuration, and a new install
	// afterwards starts the service again (dpkg passes it the version
	// whose configuration was kept, as on an upgrade).
	mustIn(t, e, c, "", "dpkg --remove myt </dev/null")
	if out := mustIn(t, e, c, "", "systemctl is-active myt || true; test -e /var/lib/myt/myt.db && echo data kept; test -e /etc/myt/myt.env && echo config kept"); out != "inactive\ndata kept\nconfig kept\n" {
		t.Errorf("after remove:\n%s", out)
	}
	mustIn(t, e, c, "", "dpkg -i /root/myt_"+debVersion+"_amd64.deb </dev/null")
	waitHealthz(t, e, c, "127.0.0.1:8080")
	if out := mustIn(t, e, c, "", "systemctl is-enabled myt; systemctl is-active myt"); out != "enabled\nactive\n" {
		t.Errorf("install after remove: the service is\n%s", out)
	}

	// Purge: asks nothing, removes the data, the user, the unit and the
	// configuration the package made; keeps a file the admin made.
	mustIn(t, e, c, "", "echo 'tools: {}' >/etc/myt/deploy.yaml")
	mustIn(t, e, c, "", "dpkg --purge myt </dev/null")
	out = mustIn(t, e, c, "", "for p in /var/lib/myt /etc/myt/myt.env /usr/bin/myt /usr/lib/myt /usr/lib/systemd/system/myt.service /etc/myt/deploy.yaml; do test -e $p && echo $p; done; getent passwd myt || true; systemctl is-active myt || true")
	if want := "/etc/myt/deploy.yaml\ninactive\n"; out != want {
		t.Errorf("after purge, left behind:\n%s\nwant\n%s", out, want)
	}
}
