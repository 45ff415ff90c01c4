package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliAWSSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

const greenhouseDesign = `apiVersion: myt/v1
kind: Platform
metadata: {name: greenhouse}
spec:
  target: {provider: aws, credentials: my-aws, region: eu-west-1, size: small, adminCIDRs: ["203.0.113.7/32"], deviceCIDRs: ["0.0.0.0/0"], dataVolumeGB: 20}
  database: {kind: timescaledb, fields: {temperature: float, humidity: float}}
  broker: {mqtt: true, amqp: true, tls: true, plaintext: false}
  processing: {handler: "def process(msg):\n    return msg\n"}
`

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, env []string, stdin string, args ...string) string {
	t.Helper()
	r := runCLI(t, env, stdin, args...)
	if r.Code != 0 {
		t.Fatalf("myt %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// failCLI runs the CLI, expects a non-zero exit with an error containing
// want (its message, then one indented line per problem), and returns it.
func failCLI(t *testing.T, env []string, stdin, want string, args ...string) string {
	t.Helper()
	r := runCLI(t, env, stdin, args...)
	if r.Code == 0 {
		t.Fatalf("myt %s succeeded; want failure containing %q\n%s", strings.Join(args, " "), want, r.Stdout)
	}
	msg := strings.TrimRight(r.Stderr, "\n")
	if i := strings.Index(msg, "\nmyt: "); i >= 0 {
		msg = msg[i+1:] // after a prompt
	}
	for _, l := range strings.Split(msg, "\n")[1:] {
		if !strings.HasPrefix(l, "  ") {
			t.Errorf("myt %s: a line of the error is not an indented problem: %q\n%s", strings.Join(args, " "), l, msg)
		}
	}
	if !strings.HasPrefix(msg, "myt: ") || !strings.Contains(msg, want) {
		t.Errorf("myt %s: error %q does not contain %q", strings.Join(args, " "), msg, want)
	}
	return msg
}

func TestCLIAgainstRealServer(t *testing.T) {
	srv := startServer(t)
	home := t.TempDir()
	cfgPath := filepath.Join(home, "cfg", "config.json")
	env := []string{"HOME=" + home, "MYT_CONFIG=" + cfgPath}

	// Offline bootstrap of the first admin, into the running server's data
	// dir (SQLite handles the concurrent writer).
	out := mustCLI(t, nil, "correct horse battery\n", "user", "create", "--data", srv.Data, "--username", "ada", "--password-stdin", "--admin")
	if !strings.Contains(out, `administrator "ada"`) {
		t.Errorf("user create: %s", out)
	}
	failCLI(t, env, "", "--password-stdin", "login", "--server", srv.URL, "--username", "ada")
	failCLI(t, env, "wrong password", "Wrong username or password", "login", "--server", srv.URL, "--username", "ada", "--password-stdin")
	mustCLI(t, env, "correct horse battery\n", "login", "--server", srv.URL, "--username", "ada", "--password-stdin")
	st, err := os.Stat(cfgPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode: %v %v", st, err)
	}

	// Credentials: the secret only from stdin or a file.
	failCLI(t, env, "", "secret_access_key", "creds", "add", "aws", "--name", "my-aws", "--access-key-id", "AKIAIOSFODNN7EXAMPLE")
	failCLI(t, env, "short", "--access-key-id", "creds", "add", "aws", "--name", "my-aws", "--access-key-id", "nope", "--secret-stdin")
	mustCLI(t, env, cliAWSSecret+"\n", "creds", "add", "aws", "--name", "my-aws", "--access-key-id", "AKIAIOSFODNN7EXAMPLE", "--region", "eu-west-1", "--secret-stdin")
	out = mustCLI(t, env, "", "creds", "add", "ssh", "--name", "pi", "--host", "10.250.0.2", "--user", "root")
	if !strings.Contains(out, "ssh-ed25519 ") {
		t.Errorf("generated ssh key not shown:\n%s", out)
	}
	list := mustCLI(t, env, "", "creds", "list")
	if !strings.Contains(list, "my-aws") || !strings.Contains(list, "••••••••EKEY") || strings.Contains(list, cliAWSSecret) {
		t.Errorf("creds list:\n%s", list)
	}
	var creds []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, env, "", "creds", "list", "-o", "json")), &creds); err != nil || len(creds) != 2 {
		t.Fatalf("creds list -o json: %v %v", creds, err)
	}

	// Platforms.
	design := filepath.Join(home, "greenhouse.yaml")
	os.WriteFile(design, []byte(greenhouseDesign), 0o644)
	bad := filepath.Join(home, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(greenhouseDesign, "provider: aws", "provider: awz", 1)), 0o644)
	failCLI(t, env, "", "spec.target.provider", "platform", "create", "-f", bad)
	// A credential the user does not have: the error lists theirs.
	awz := filepath.Join(home, "awz.yaml")
	os.WriteFile(awz, []byte(strings.Replace(greenhouseDesign, "credentials: my-aws", "credentials: my-awz", 1)), 0o644)
	failCLI(t, env, "", "your aws credentials: my-aws", "platform", "create", "-f", awz)
	out = mustCLI(t, env, "", "platform", "create", "-f", design)
	if !strings.Contains(out, `"greenhouse"`) || !strings.Contains(out, "designed") {
		t.Errorf("platform create: %s", out)
	}
	failCLI(t, env, "", "already have a platform", "platform", "create", "-f", design)
	list = mustCLI(t, env, "", "platform", "list")
	if !strings.Contains(list, "greenhouse") || !strings.Contains(list, "designed") || !strings.Contains(list, "timescaledb") {
		t.Errorf("platform list:\n%s", list)
	}
	var ps []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, env, "", "platform", "list", "--output", "json")), &ps); err != nil || len(ps) != 1 || ps[0]["status"] != "designed" {
		t.Fatalf("platform list -o json: %v %v", ps, err)
	}
	y := mustCLI(t, env, "", "platform", "show", "greenhouse", "-o", "yaml")
	if !strings.Contains(y, "kind: timescaledb") || !strings.Contains(y, "apiVersion: myt/v1") || !strings.Contains(y, "handler: |\n      def process(msg):\n") {
		t.Errorf("platform show -o yaml:\n%s", y)
	}
	if show := mustCLI(t, env, "", "platform", "show", "greenhouse"); !strings.Contains(show, "5671, 8883") {
		t.Errorf("platform show lists the ports as a Go slice:\n%s", show)
	}
	if help := mustCLI(t, env, "", "creds", "add", "aws", "--help"); !strings.Contains(help, "Save an Amazon Web Services credential") {
		t.Errorf("creds add aws --help:\n%s", help)
	}
	failCLI(t, env, "", "used by platform", "creds", "rm", "my-aws")

	// A second user sees nothing of ada's, through MYT_SERVER/MYT_TOKEN.
	adaCfg, _ := os.ReadFile(cfgPath)
	var cfg struct{ Token string }
	json.Unmarshal(adaCfg, &cfg)
	bobHome := t.TempDir()
	bobEnv := []string{"HOME=" + bobHome, "MYT_CONFIG=" + filepath.Join(bobHome, "c.json"), "MYT_SERVER=" + srv.URL}
	mustCLI(t, nil, "bob's long password\n", "user", "create", "--data", srv.Data, "--username", "bob", "--password-stdin")
	mustCLI(t, bobEnv, "bob's long password", "login", "--username", "bob", "--password-stdin")
	if out := mustCLI(t, bobEnv, "", "platform", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("bob sees platforms: %s", out)
	}
	failCLI(t, bobEnv, "", "no platform named", "platform", "show", "greenhouse")
	failCLI(t, bobEnv, "", "not found", "platform", "show", "1")
	// MYT_TOKEN overrides the stored login: with ada's token, bob's shell
	// sees ada's platform.
	if out := mustCLI(t, append(bobEnv, "MYT_TOKEN="+cfg.Token), "", "platform", "list"); !strings.Contains(out, "greenhouse") {
		t.Errorf("MYT_TOKEN not honoured:\n%s", out)
	}

	// rm asks first: no answer, or a wrong one, deletes nothing.
	failCLI(t, env, "", "was not deleted", "platform", "rm", "greenhouse")
	failCLI(t, env, "y\n", "--yes", "platform", "rm", "greenhouse")
	mustCLI(t, env, "greenhouse\n", "platform", "rm", "greenhouse")
	mustCLI(t, env, "", "creds", "rm", "my-aws")
	mustCLI(t, env, "", "logout")
	failCLI(t, env, "", "not logged in", "platform", "list")
	// The revoked token no longer works, even when given explicitly.
	failCLI(t, append(env, "MYT_TOKEN="+cfg.Token), "", "sign in again", "platform", "list")

	// Nothing secret reached the server's log.
	for _, secret := range []string{cliAWSSecret, "correct horse battery", cfg.Token} {
		if strings.Contains(srv.Log(), secret) {
			t.Errorf("server log contains a secret (%.6s…)", secret)
		}
	}
}

func TestRotateServerKey(t *testing.T) {
	data := t.TempDir()
	mustCLI(t, nil, "correct horse battery", "user", "create", "--data", data, "--username", "ada", "--password-stdin")
	before, _ := os.ReadFile(filepath.Join(data, "server.key"))
	out := mustCLI(t, nil, "", "vault", "rotate-server-key", "--data", data)
	if !strings.Contains(out, "Rotated the server key") {
		t.Errorf("rotate: %s", out)
	}
	after, _ := os.ReadFile(filepath.Join(data, "server.key"))
	if len(after) == 0 || string(after) == string(before) {
		t.Fatal("server.key unchanged")
	}
	// The data dir still opens with the new key.
	mustCLI(t, nil, "another long password", "user", "create", "--data", data, "--username", "bob", "--password-stdin")
	// And refuses the old one.
	os.WriteFile(filepath.Join(data, "server.key"), before, 0o600)
	failCLI(t, nil, "another long password", "not the one this database was sealed with", "user", "create", "--data", data, "--username", "carl", "--password-stdin")
}
