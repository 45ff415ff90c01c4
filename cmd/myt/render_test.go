package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMyt(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

const sshDesign = `apiVersion: myt/v1
kind: Platform
metadata: {name: lab}
spec:
  target: {provider: ssh, credentials: lab, adminCIDRs: ["192.0.2.0/24"]}
  database: {kind: mysql}
`

// TestRenderCommandKeepsSecrets renders twice into one directory: the
// second run must keep every secret and the CA (a deployed database keeps
// its password), and the bundle must have the parts of an ssh target.
func TestRenderCommandKeepsSecrets(t *testing.T) {
	dir := t.TempDir()
	design := filepath.Join(dir, "design.yaml")
	if err := os.WriteFile(design, []byte(sshDesign), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	if _, err := runMyt(t, "render", design, "-o", out); err == nil || !strings.Contains(errorText(err), "--ssh-host") {
		t.Fatalf("ssh target without --ssh-host: %v", err)
	}
	res, err := runMyt(t, "render", design, "-o", out, "--ssh-host", "192.0.2.9", "--ssh-user", "ops", "--output", "json")
	if err != nil {
		t.Fatalf("render: %v\n%s", err, res)
	}
	var sum struct {
		Parts []string `json:"parts"`
	}
	if err := json.Unmarshal([]byte(res), &sum); err != nil {
		t.Fatalf("json output: %v\n%s", err, res)
	}
	if strings.Join(sum.Parts, ",") != "ansible,platform,pki,secrets.d" {
		t.Errorf("parts %v", sum.Parts)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := map[string]string{}
	for _, p := range []string{"secrets.d/db_password", "secrets.d/grafana_admin_password", "platform/secrets/db_dsn", "pki/ca.crt", "pki/ca.key"} {
		before[p] = read(p)
	}
	inv := read("ansible/inventory.yml")
	if !strings.Contains(inv, "ansible_host: 192.0.2.9") || !strings.Contains(inv, "ansible_user: ops") {
		t.Errorf("inventory:\n%s", inv)
	}
	if _, err := runMyt(t, "render", design, "-o", out, "--ssh-host", "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	for p, v := range before {
		if read(p) != v {
			t.Errorf("%s changed on re-render", p)
		}
	}
	info, err := os.Stat(filepath.Join(out, "secrets.d", "db_password"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("secret mode %v %v", info.Mode(), err)
	}
}

// TestRenderCheckWithoutOut: `myt render design.yaml --check`, as the
// README writes it, renders into a temporary directory, checks it with
// the tools installed, removes it, and on a machine that reaches neither
// the registry nor a mirror says init was skipped instead of failing.
func TestRenderCheckWithoutOut(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "greenhouse.yaml")
	doc := `apiVersion: myt/v1
kind: Platform
metadata: {name: greenhouse}
spec:
  target: {provider: aws, credentials: my-aws, region: eu-west-1, adminCIDRs: ["203.0.113.7/32"]}
  database: {kind: timescaledb}
`
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TF_CLI_CONFIG_FILE", "")
	t.Setenv("MYT_DEPLOY_CONFIG", "")
	res, err := runMyt(t, "render", file, "--check", "--output", "json")
	var sum struct {
		Dir       string `json:"dir"`
		Temporary bool   `json:"temporary"`
		Checks    []struct {
			Tool, Status, Detail string
		} `json:"checks"`
	}
	if jerr := json.Unmarshal([]byte(res), &sum); jerr != nil {
		t.Fatalf("render --check without -o: %v\n%s", err, res)
	}
	if !sum.Temporary || sum.Dir == "" {
		t.Errorf("summary %+v", sum)
	}
	if _, serr := os.Stat(sum.Dir); !os.IsNotExist(serr) {
		t.Errorf("temporary bundle %s left behind (%v)", sum.Dir, serr)
	}
	sawInit := false
	for _, c := range sum.Checks {
		if strings.Contains(c.Tool, " init") {
			sawInit = true
			if c.Status == "failed" {
				t.Errorf("init failed (offline without a mirror it must be skipped): %s", c.Detail)
			}
			if c.Status == "skipped" && !strings.Contains(c.Detail, "no registry or mirror") && !strings.Contains(c.Detail, "installed") {
				t.Errorf("init skipped without the reason: %s", c.Detail)
			}
		}
	}
	if !sawInit && len(sum.Checks) > 0 && !strings.Contains(res, "neither is installed") {
		t.Errorf("no init check: %s", res)
	}
	if err != nil && !strings.Contains(errorText(err), "failed on the bundle") {
		t.Errorf("render --check: %v", err)
	}
}

// TestRenderSaysWhenTheHandlerWasNotChecked: without python3 the handler's
// syntax cannot be checked here, and the command says so.
func TestRenderSaysWhenTheHandlerWasNotChecked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.yaml")
	doc := sshDesign + "  processing: {handler: \"def process(msg)\\n    return msg\\n\"}\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	out, err := runMyt(t, "render", file, "-o", filepath.Join(dir, "b"), "--ssh-host", "192.0.2.9")
	if err != nil {
		t.Fatalf("render: %v\n%s", err, out)
	}
	if !strings.Contains(out, "syntax was not checked") {
		t.Errorf("no note that the handler was not checked:\n%s", out)
	}
}

// TestRenderKeepsServerNames: the names given with --server-name (the
// public address after apply) are saved in the bundle, so rendering the
// same directory again without them keeps the certificate byte for byte,
// and a new name adds to the saved ones.
func TestRenderKeepsServerNames(t *testing.T) {
	dir := t.TempDir()
	design := filepath.Join(dir, "design.yaml")
	if err := os.WriteFile(design, []byte(sshDesign), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	render := func(extra ...string) (sum struct {
		ServerNames        []string `json:"serverNames"`
		CertificateRenewed bool     `json:"certificateRenewed"`
	}, cert string) {
		t.Helper()
		args := append([]string{"render", design, "-o", out, "--ssh-host", "192.0.2.9", "--output", "json"}, extra...)
		res, err := runMyt(t, args...)
		if err != nil {
			t.Fatalf("render %v: %v\n%s", extra, err, res)
		}
		if err := json.Unmarshal([]byte(res), &sum); err != nil {
			t.Fatalf("json output: %v\n%s", err, res)
		}
		b, err := os.ReadFile(filepath.Join(out, "platform", "tls", "server.crt"))
		if err != nil {
			t.Fatal(err)
		}
		return sum, string(b)
	}
	sum, cert1 := render("--server-name", "203.0.113.10", "--server-name", "lab.example.org")
	if strings.Join(sum.ServerNames, ",") != "203.0.113.10,lab.example.org" {
		t.Errorf("first render: server names %v", sum.ServerNames)
	}
	sum, cert2 := render()
	if strings.Join(sum.ServerNames, ",") != "203.0.113.10,lab.example.org" || sum.CertificateRenewed {
		t.Errorf("second render without names: %+v", sum)
	}
	if cert2 != cert1 {
		t.Error("a render with no new name replaced the server certificate")
	}
	sum, cert3 := render("--server-name", "lab2.example.org")
	if strings.Join(sum.ServerNames, ",") != "203.0.113.10,lab.example.org,lab2.example.org" || !sum.CertificateRenewed {
		t.Errorf("third render with a new name: %+v", sum)
	}
	if cert3 == cert1 {
		t.Error("a new name did not give a new certificate")
	}
	text, err := runMyt(t, "render", design, "-o", out, "--ssh-host", "192.0.2.9")
	if err != nil || !strings.Contains(text, "Server certificate valid until ") || !strings.Contains(text, "also for 203.0.113.10, lab.example.org, lab2.example.org") {
		t.Errorf("table output lacks the certificate line: %v\n%s", err, text)
	}
}
