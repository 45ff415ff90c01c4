package render_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
)

// TestRenderRejects: every refusal is an EINVALID error a user can act on.
func TestRenderRejects(t *testing.T) {
	ssh := designNamed(t, "ssh-mysql-plaintext")
	aws := designNamed(t, "aws-timescaledb")
	bad := *aws
	bad.Spec.Target.AdminCIDRs = []string{"0.0.0.0/0"}
	for _, c := range []struct {
		name string
		d    *myt.Design
		o    render.Options
		want string
	}{
		{"ssh without host", ssh, render.Options{}, "--ssh-host"},
		{"bad port", ssh, render.Options{SSH: render.SSHTarget{Host: "h", Port: 70000}}, "SSH port"},
		{"bad user", ssh, render.Options{SSH: render.SSHTarget{Host: "h", User: "x;rm"}}, "SSH user"},
		{"bad key", aws, render.Options{SSHPublicKey: "not a key"}, "SSH public key"},
		{"admin open to the Internet", &bad, render.Options{}, "adminCIDRs"},
		{"nil design", nil, render.Options{}, "No design"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render.Render(context.Background(), c.d, c.o)
			if myt.ErrorCode(err) != myt.EINVALID {
				t.Fatalf("error %v, want EINVALID", err)
			}
			text := myt.ErrorMessage(err)
			for _, f := range myt.ErrorFields(err) {
				text += " " + f.String()
			}
			if !strings.Contains(text, c.want) {
				t.Errorf("error %q does not mention %q", text, c.want)
			}
		})
	}
}

// TestRenderKeepsCAAndNames: a given CA signs the server certificate,
// which names the SSH host and every extra server name; a given SSH key
// is used and no key pair is generated.
func TestRenderKeepsCAAndNames(t *testing.T) {
	ca, err := pki.NewCA("greenhouse", pki.Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	d := designNamed(t, "aws-timescaledb")
	o := testOptions(d)
	o.CA = ca
	o.ServerNames = []string{"203.0.113.10", "greenhouse.example.org"}
	o.SSHPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb6ksUeWrYD1TVdpHnSAW4sSvwwQjQMG7k2lahY9Ya3 me@laptop\n"
	b, err := render.Render(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.File("pki/ca.crt").Data) != string(ca.CertPEM) {
		t.Error("the given CA was not kept")
	}
	for _, name := range []string{"203.0.113.10", "greenhouse.example.org", "rabbitmq", "localhost"} {
		if err := verifyServer(ca, b.File("platform/tls/server.crt").Data, name, testNow); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if b.File("ssh/id_ed25519") != nil || b.File("secrets.d/ssh_key_seed") != nil {
		t.Error("a key pair was generated although a public key was given")
	}
	if !strings.Contains(string(b.File("infra/terraform.tfvars.json").Data), "AAAAC3NzaC1lZDI1NTE5AAAAIGb6ksUeWrYD1TVdpHnSAW4sSvwwQjQMG7k2lahY9Ya3") {
		t.Error("the given key is not in tfvars")
	}
	if strings.Contains(string(b.File("ansible/inventory.yml").Data), "ansible_ssh_private_key_file") {
		t.Error("inventory points at a private key the bundle does not have")
	}
}

// TestRenderRenewsTheServerCertificateInTime: a re-render keeps the
// server certificate (byte for byte, so a redeploy restarts nothing)
// until pki.RenewBefore of its end, then issues a new one, which starts
// a full validity period; the extra names are saved in the bundle.
func TestRenderRenewsTheServerCertificateInTime(t *testing.T) {
	d := designNamed(t, "aws-timescaledb")
	o := testOptions(d)
	o.ServerNames = []string{"203.0.113.10", " ", "203.0.113.10", "greenhouse.example.org"}
	first, err := render.Render(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(first.File(render.ServerNamesFile).Data); got != "203.0.113.10\ngreenhouse.example.org\n" {
		t.Errorf("%s = %q", render.ServerNamesFile, got)
	}
	if got := render.ReadServerNames(first.File(render.ServerNamesFile).Data); strings.Join(got, ",") != "203.0.113.10,greenhouse.example.org" {
		t.Errorf("ReadServerNames = %q", got)
	}
	end := first.Server.NotAfter()
	if want := testNow.Add(pki.ServerValidity); end.Sub(want).Abs() > time.Hour {
		t.Fatalf("server certificate ends %s, want about %s", end, want)
	}
	rerender := func(at time.Time) *render.Bundle {
		t.Helper()
		o := testOptions(d)
		o.Now = func() time.Time { return at }
		o.CA, o.Server = first.CA, first.Server
		o.ServerNames = render.ReadServerNames(first.File(render.ServerNamesFile).Data)
		b, err := render.Render(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := rerender(end.Add(-pki.RenewBefore - time.Hour)); string(b.Server.CertPEM) != string(first.Server.CertPEM) {
		t.Error("a certificate with more than RenewBefore left was replaced")
	}
	late := end.Add(-pki.RenewBefore + time.Hour)
	b := rerender(late)
	if string(b.Server.CertPEM) == string(first.Server.CertPEM) {
		t.Fatal("a certificate within RenewBefore of its end was kept")
	}
	if got := b.Server.NotAfter(); got.Before(late.Add(pki.ServerValidity - time.Hour)) {
		t.Errorf("the renewed certificate ends %s", got)
	}
	for _, name := range []string{"203.0.113.10", "greenhouse.example.org"} {
		if err := verifyServer(first.CA, b.File("platform/tls/server.crt").Data, name, late); err != nil {
			t.Errorf("renewed certificate for %s: %v", name, err)
		}
	}
}

// TestRandomSecrets: generated secrets are long, of the safe alphabet,
// stable per name on one source and different across sources.
func TestRandomSecrets(t *testing.T) {
	a, b := render.NewRandomSecrets(), render.NewRandomSecrets()
	ctx := context.Background()
	x1, _ := a.Secret(ctx, "db_password")
	x2, _ := a.Secret(ctx, "db_password")
	y, _ := b.Secret(ctx, "db_password")
	if x1 != x2 || x1 == y || len(x1) != 32 {
		t.Fatalf("secrets %q %q %q", x1, x2, y)
	}
	for _, c := range x1 {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", c) {
			t.Fatalf("character %q in %q", c, x1)
		}
	}
}
