// Package credential describes the kinds of cloud and server credentials a
// user can save — their fields, which are secret, how each is checked — in
// one table that the web UI, the JSON API and the CLI all follow.
package credential

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt"
)

// Field is one input of a credential kind.
type Field struct {
	Name      string `json:"name"`
	Label     string `json:"label"`
	Secret    bool   `json:"secret"`
	Optional  bool   `json:"optional"`
	Multiline bool   `json:"multiline"`
	Default   string `json:"default,omitempty"`
	Help      string `json:"help,omitempty"`
	// check returns a problem with a non-empty value, or "".
	check func(string) string
}

// Kind is a credential kind: which provider it is for and its fields.
type Kind struct {
	Name   string  `json:"name"`
	Label  string  `json:"label"`
	Fields []Field `json:"fields"`
}

// Kinds lists every credential kind, in the order the UI shows them. The
// names equal the design's target providers (ssh included; local needs no
// credential).
var Kinds = []Kind{
	{Name: myt.ProviderAWS, Label: "Amazon Web Services", Fields: []Field{
		{Name: "access_key_id", Label: "Access key ID", Help: "Starts with AKIA (or ASIA for temporary keys).", check: match(`^(AKIA|ASIA)[A-Z0-9]{16}$`, "must be 20 characters starting with AKIA or ASIA")},
		{Name: "secret_access_key", Label: "Secret access key", Secret: true, check: match(`^[A-Za-z0-9/+=]{40}$`, "must be the 40-character secret shown when the key was created")},
		{Name: "region", Label: "Default region", Optional: true, Help: "Used when a design names no region, e.g. eu-west-1.", check: match(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$`, "must be an AWS region such as eu-west-1")},
	}},
	{Name: myt.ProviderOpenStack, Label: "OpenStack", Fields: []Field{
		{Name: "auth_url", Label: "Auth URL (Keystone v3)", Help: "For example https://keystone.example.org:5000/v3", check: httpURL},
		{Name: "username", Label: "User name", check: printable(255)},
		{Name: "password", Label: "Password", Secret: true, check: printable(1024)},
		{Name: "project_name", Label: "Project (tenant) name", check: printable(255)},
		{Name: "domain_name", Label: "Domain", Optional: true, Default: "Default", check: printable(255)},
		{Name: "region", Label: "Region", Optional: true, Help: "For example RegionOne.", check: printable(255)},
	}},
	{Name: myt.ProviderAzure, Label: "Microsoft Azure", Fields: []Field{
		{Name: "subscription_id", Label: "Subscription ID", check: uuid},
		{Name: "tenant_id", Label: "Tenant (directory) ID", check: uuid},
		{Name: "client_id", Label: "Client (application) ID", check: uuid},
		{Name: "client_secret", Label: "Client secret", Secret: true, check: printable(1024)},
	}},
	{Name: myt.ProviderGCP, Label: "Google Cloud", Fields: []Field{
		{Name: "project_id", Label: "Project ID", check: match(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`, "must be 6-30 characters of a-z, 0-9 and '-', starting with a letter")},
		{Name: "service_account_json", Label: "Service account key (JSON)", Secret: true, Multiline: true, Help: "The JSON key file of a service account, as downloaded.", check: serviceAccount},
	}},
	{Name: myt.ProviderSSH, Label: "Existing server (SSH)", Fields: []Field{
		{Name: "host", Label: "Host", Help: "Host name or IP address of a Debian or Ubuntu server.", check: host},
		{Name: "port", Label: "Port", Optional: true, Default: "22", check: port},
		{Name: "user", Label: "User", Help: "A user that may sudo without a password, or root.", check: match(`^[a-z_][a-z0-9_.-]{0,31}$`, "must be a Unix user name")},
		{Name: "private_key", Label: "Private key", Secret: true, Multiline: true, Optional: true, Help: "An unencrypted OpenSSH or PEM private key. Leave empty to have MyT generate an ed25519 key pair.", check: privateKey},
	}},
}

// Lookup returns the kind named name.
func Lookup(name string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Names returns the kind names.
func Names() []string {
	n := make([]string, len(Kinds))
	for i, k := range Kinds {
		n[i] = k.Name
	}
	return n
}

// Normalize checks a credential before it is saved and returns its public
// and secret parts with defaults applied and surrounding space trimmed. Every
// problem is reported at once (EINVALID, one message per field). An ssh
// credential without a private key gets a freshly generated ed25519 pair:
// the private key in the secret, the public key in Public["public_key"].
func Normalize(name, kind string, public map[string]string, secret myt.Secret) (map[string]string, myt.Secret, error) {
	var errs []myt.FieldError
	add := func(field, msg string) { errs = append(errs, myt.FieldError{Field: field, Message: msg}) }
	if !myt.ValidCredentialName(name) {
		add("name", fmt.Sprintf("%q given; %s", name, myt.CredentialNameRule))
	}
	k, ok := Lookup(kind)
	if !ok {
		add("kind", fmt.Sprintf("%q given; allowed: %s", kind, strings.Join(Names(), ", ")))
		return nil, nil, myt.Invalid("The credential is not valid.", errs)
	}
	pub, sec := map[string]string{}, myt.Secret{}
	known := map[string]bool{}
	for _, f := range k.Fields {
		known[f.Name] = true
		src := map[string]string(public)
		if f.Secret {
			src = secret
		}
		v := strings.TrimSpace(src[f.Name])
		if f.Multiline && v != "" {
			v += "\n" // keys and JSON files end with a newline
		}
		if v == "" {
			v = f.Default
		}
		switch {
		case v == "" && !f.Optional:
			add(f.Name, "required")
			continue
		case v == "":
			continue
		}
		if msg := f.check(strings.TrimSpace(v)); msg != "" {
			add(f.Name, msg)
			continue
		}
		if f.Secret {
			sec[f.Name] = v
		} else {
			pub[f.Name] = v
		}
	}
	for name := range public {
		if !known[name] && !(kind == myt.ProviderSSH && name == "public_key") {
			add(name, "unknown field for "+kind)
		}
	}
	for name := range secret {
		if !known[name] {
			add(name, "unknown field for "+kind)
		}
	}
	// A secret sent as a public field (or the reverse) is a client bug that
	// could leak it: reject rather than guess.
	for _, f := range k.Fields {
		if _, inPub := public[f.Name]; inPub && f.Secret {
			add(f.Name, "is secret: send it with the secret fields")
		}
		if _, inSec := secret[f.Name]; inSec && !f.Secret {
			add(f.Name, "is not secret: send it with the public fields")
		}
	}
	if len(errs) > 0 {
		return nil, nil, myt.Invalid("The credential is not valid.", errs)
	}
	if kind == myt.ProviderSSH {
		if sec["private_key"] == "" {
			priv, pubKey, err := GenerateSSHKey("myt-" + name)
			if err != nil {
				return nil, nil, fmt.Errorf("generate ssh key: %w", err)
			}
			sec["private_key"] = priv
			pub["public_key"] = pubKey
		} else {
			signer, err := ssh.ParsePrivateKey([]byte(sec["private_key"]))
			if err != nil {
				return nil, nil, fmt.Errorf("parse checked ssh key: %w", err)
			}
			pub["public_key"] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		}
	}
	return pub, sec, nil
}

// GenerateSSHKey returns a new ed25519 key pair: the private key in OpenSSH
// PEM form and the public key in authorized_keys form.
func GenerateSSHKey(comment string) (privatePEM, authorizedKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + comment, nil
}

// Mask shows enough of a secret to recognise it, never enough to use it.
func Mask(secret string) string {
	s := strings.TrimSpace(secret)
	if strings.Contains(s, "\n") || len(s) < 16 {
		return "•••••••• (" + strconv.Itoa(len(s)) + " characters)"
	}
	return "••••••••" + s[len(s)-4:]
}

func match(expr, msg string) func(string) string {
	re := regexp.MustCompile(expr)
	return func(v string) string {
		if re.MatchString(v) {
			return ""
		}
		return msg
	}
}

var uuid = match(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`, "must be a GUID such as 00000000-0000-0000-0000-000000000000")

func printable(max int) func(string) string {
	return func(v string) string {
		if len(v) > max {
			return fmt.Sprintf("must be at most %d characters", max)
		}
		for _, r := range v {
			if r < 0x20 || r == 0x7f {
				return "must not contain control characters"
			}
		}
		return ""
	}
}

func httpURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "must be an http(s) URL such as https://keystone.example.org:5000/v3"
	}
	if u.User != nil {
		return "must not contain a user or password (enter them in their own fields)"
	}
	return ""
}

var hostRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

func host(v string) string {
	if net.ParseIP(v) != nil || (len(v) <= 253 && hostRE.MatchString(v)) {
		return ""
	}
	return "must be a host name or an IP address"
}

func port(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return "must be a port number 1-65535"
	}
	return ""
}

func privateKey(v string) string {
	_, err := ssh.ParsePrivateKey([]byte(v))
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &missing):
		return "is protected by a passphrase; MyT needs an unencrypted key (make one for MyT alone)"
	default:
		return "is not an OpenSSH or PEM private key"
	}
}

func serviceAccount(v string) string {
	var sa struct {
		Type        string `json:"type"`
		ProjectID   string `json:"project_id"`
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
	}
	if err := json.Unmarshal([]byte(v), &sa); err != nil {
		return "is not valid JSON"
	}
	var missing []string
	for k, val := range map[string]string{"private_key": sa.PrivateKey, "client_email": sa.ClientEmail} {
		if val == "" {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	switch {
	case sa.Type != "service_account":
		return `must be a service account key file ("type": "service_account")`
	case len(missing) > 0:
		return "lacks " + strings.Join(missing, ", ")
	}
	return ""
}
