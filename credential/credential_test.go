package credential_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
)

func fieldsOf(err error) map[string]string {
	out := map[string]string{}
	for _, f := range myt.ErrorFields(err) {
		out[f.Field] = f.Message
	}
	return out
}

func TestNormalizeValidKinds(t *testing.T) {
	tests := []struct {
		kind   string
		public map[string]string
		secret myt.Secret
	}{
		{"aws", map[string]string{"access_key_id": " AKIAIOSFODNN7EXAMPLE ", "region": "eu-west-1"}, myt.Secret{"secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{"openstack", map[string]string{"auth_url": "https://keystone.example.org:5000/v3", "username": "u", "project_name": "p"}, myt.Secret{"password": "pw"}},
		{"azure", map[string]string{"subscription_id": "00000000-0000-0000-0000-000000000001", "tenant_id": "00000000-0000-0000-0000-000000000002", "client_id": "00000000-0000-0000-0000-000000000003"}, myt.Secret{"client_secret": "s"}},
		{"gcp", map[string]string{"project_id": "my-project-1"}, myt.Secret{"service_account_json": `{"type":"service_account","private_key":"k","client_email":"a@b"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			pub, sec, err := credential.Normalize("c1", tt.kind, tt.public, tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range pub {
				if v != strings.TrimSpace(v) {
					t.Errorf("public %s not trimmed: %q", k, v)
				}
			}
			if len(sec) != 1 {
				t.Errorf("secret = %d fields", len(sec))
			}
		})
	}
	pub, _, err := credential.Normalize("c1", "openstack", map[string]string{"auth_url": "https://k/v3", "username": "u", "project_name": "p"}, myt.Secret{"password": "pw"})
	if err != nil || pub["domain_name"] != "Default" {
		t.Errorf("openstack domain default: %v %v", pub, err)
	}
}

func TestNormalizeErrorsNameFields(t *testing.T) {
	tests := []struct {
		name, kind string
		public     map[string]string
		secret     myt.Secret
		want       map[string]string // field → part of its message
	}{
		{"bad aws", "aws", map[string]string{"access_key_id": "nope", "region": "mars"}, myt.Secret{"secret_access_key": "short"},
			map[string]string{"access_key_id": "AKIA", "secret_access_key": "40-character", "region": "AWS region"}},
		{"missing", "azure", map[string]string{}, myt.Secret{}, map[string]string{"subscription_id": "required", "client_secret": "required"}},
		{"secret as public", "aws", map[string]string{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, myt.Secret{},
			map[string]string{"secret_access_key": "is secret"}},
		{"unknown", "gcp", map[string]string{"project_id": "my-project-1", "colour": "red"}, myt.Secret{"service_account_json": `{"type":"user"}`},
			map[string]string{"colour": "unknown", "service_account_json": "service_account"}},
		{"bad url", "openstack", map[string]string{"auth_url": "https://user:pw@k/v3", "username": "u", "project_name": "p"}, myt.Secret{"password": "x"},
			map[string]string{"auth_url": "must not contain a user"}},
		{"bad ssh", "ssh", map[string]string{"host": "bad host!", "port": "70000", "user": "Root"}, myt.Secret{"private_key": "not a key"},
			map[string]string{"host": "host name", "port": "1-65535", "user": "Unix user", "private_key": "not an OpenSSH"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := credential.Normalize("c1", tt.kind, tt.public, tt.secret)
			if myt.ErrorCode(err) != myt.EINVALID {
				t.Fatalf("err = %v, want invalid", err)
			}
			got := fieldsOf(err)
			for f, part := range tt.want {
				if !strings.Contains(got[f], part) {
					t.Errorf("%s: message %q does not contain %q (all: %v)", f, got[f], part, got)
				}
			}
		})
	}
	if _, _, err := credential.Normalize("bad name!", "aws", nil, nil); fieldsOf(err)["name"] == "" {
		t.Errorf("bad credential name accepted: %v", err)
	}
	// A credential is saved under the names a design may refer to: both
	// follow one rule.
	for name, want := range map[string]bool{"a": true, "prod.eu_1-b": true, strings.Repeat("x", 63): true,
		strings.Repeat("x", 64): false, ".hidden": false, "-x": false, "bad name!": false, "": false} {
		_, _, err := credential.Normalize(name, "aws", nil, nil)
		if saved := fieldsOf(err)["name"] == ""; saved != want || myt.ValidCredentialName(name) != want {
			t.Errorf("name %q: saved %v, valid in a design %v; want %v", name, saved, myt.ValidCredentialName(name), want)
		}
	}
	if _, _, err := credential.Normalize("c", "oracle", nil, nil); fieldsOf(err)["kind"] == "" {
		t.Errorf("unknown kind accepted: %v", err)
	}
}

func TestSSHKeys(t *testing.T) {
	// Without a key MyT generates one, and the public half matches it.
	pub, sec, err := credential.Normalize("pi", "ssh", map[string]string{"host": "10.250.0.2", "user": "root"}, myt.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(sec["private_key"]))
	if err != nil {
		t.Fatalf("generated private key does not parse: %v", err)
	}
	if signer.PublicKey().Type() != "ssh-ed25519" {
		t.Errorf("generated key type %s", signer.PublicKey().Type())
	}
	want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if !strings.HasPrefix(pub["public_key"], want) || pub["port"] != "22" {
		t.Errorf("public = %v; want the key %q and port 22", pub, want)
	}
	if strings.Contains(pub["public_key"], "PRIVATE") {
		t.Fatal("private key material in the public part")
	}

	// A passphrase-protected key is refused with a reason.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "c", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = credential.Normalize("pi", "ssh", map[string]string{"host": "pi.local", "user": "pi"}, myt.Secret{"private_key": string(pem.EncodeToMemory(block))})
	if !strings.Contains(fieldsOf(err)["private_key"], "passphrase") {
		t.Errorf("encrypted key: %v", err)
	}
}

func TestMask(t *testing.T) {
	for secret, want := range map[string]string{
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "••••••••EKEY",
		"short":           "•••••••• (5 characters)",
		"-----BEGIN\nX\n": "•••••••• (12 characters)",
	} {
		if got := credential.Mask(secret); got != want {
			t.Errorf("Mask(%q) = %q, want %q", secret, got, want)
		}
	}
}
